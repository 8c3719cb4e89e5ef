import t from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { CpuBudget } from '../../bench/harness/cpuBudget.js';

const available =
  process.getuid?.() === 0 &&
  (fs.existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') ||
    fs.existsSync('/sys/fs/cgroup/cgroup.controllers'));

void t.test(
  'a CPU budget confines a process and its children, reports throttling, and goes away',
  { skip: available ? false : 'needs root and a cgroup cpu controller' },
  async (t) => {
    const budget = CpuBudget.create(0.1);
    // A busy child that also starts a busy grandchild after joining: the grandchild inherits the budget.
    const busy = spawn(
      process.execPath,
      [
        '-e',
        "process.stdin.once('data', () => { require('child_process').spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'inherit' }); for(;;){} })",
      ],
      { stdio: ['pipe', 'ignore', 'ignore'] },
    );
    t.teardown(() => {
      busy.kill('SIGKILL');
    });
    budget.add(busy.pid!);
    busy.stdin.write('go\n');
    const cgroupOf = (pid: number): string => fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    t.match(cgroupOf(busy.pid!), /teleconsult-bench-/, 'the process is in the budget');
    let grandchild: number | undefined;
    for (let i = 0; i < 50 && grandchild === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const children = fs.readFileSync(`/proc/${busy.pid}/task/${busy.pid}/children`, 'utf8').trim();
      if (children) grandchild = Number(children.split(' ')[0]);
    }
    t.ok(grandchild, 'the child started its own child');
    t.match(cgroupOf(grandchild!), /teleconsult-bench-/, 'a child started later inherits the budget');
    await new Promise((resolve) => setTimeout(resolve, 500));
    t.ok(budget.throttledS() > 0, 'two busy processes in a tenth of a core are held back');

    process.kill(grandchild!, 'SIGKILL');
    busy.kill('SIGKILL');
    await new Promise((resolve) => busy.once('exit', resolve));
    const dirs = (): string[] =>
      fs
        .readdirSync(
          fs.existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') ? '/sys/fs/cgroup/cpu' : '/sys/fs/cgroup',
        )
        .filter((name) => name.startsWith(`teleconsult-bench-${process.pid}-`));
    t.equal(dirs().length, 1);
    await budget.close();
    t.same(dirs(), [], 'the cgroup is removed');
  },
);

void t.test('a budget must be positive', async (t) => {
  t.throws(() => CpuBudget.create(0), /must be positive/);
});
