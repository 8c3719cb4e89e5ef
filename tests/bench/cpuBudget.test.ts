import t from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { CpuBudget } from '../../bench/harness/cpuBudget.js';
import { cgroupCpuQuota } from '../support/hostCapabilities.js';

const skip = cgroupCpuQuota();

/**
 * A busy child that reports on stdout: `ready` once it listens, then (on `go`) the pid of a busy
 * grandchild it starts. Reporting the pid avoids depending on /proc/<pid>/task/<tid>/children and on
 * how long a throttled Node takes to get there.
 */
const CHILD = `
const { spawn } = require('child_process');
process.stdin.once('data', () => {
  const grandchild = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
  process.stdout.write('grandchild ' + grandchild.pid + '\\n');
  setTimeout(() => { for (;;) {} }, 10);
});
process.stdout.write('ready\\n');
`;

/** How long a test waits for a throttled child's answer before failing (a deadline, not a speed check). */
const ANSWER_DEADLINE_MS = 60_000;

void t.test(
  'a CPU budget confines a process and its children, reports throttling, and goes away',
  { skip },
  async (t) => {
    const budget = CpuBudget.create(0.1);
    t.teardown(() => budget.close());
    const busy = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'ignore'] });
    const started: { grandchild?: number } = {};
    t.teardown(() => {
      busy.kill('SIGKILL');
      if (started.grandchild) {
        try {
          process.kill(started.grandchild, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    });
    const lines = readline.createInterface({ input: busy.stdout });
    const nextLine = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no answer from the child')), ANSWER_DEADLINE_MS);
        lines.once('line', (line) => {
          clearTimeout(timer);
          resolve(line);
        });
      });

    t.equal(await nextLine(), 'ready', 'the child started');
    budget.add(busy.pid!);
    const cgroupOf = (pid: number): string => fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    t.match(cgroupOf(busy.pid!), /teleconsult-bench-/, 'the process is in the budget');
    busy.stdin.write('go\n');
    const reported = /^grandchild (\d+)$/.exec(await nextLine());
    t.ok(reported, 'the child started its own child');
    const grandchild = Number(reported?.[1]);
    started.grandchild = grandchild;
    t.match(cgroupOf(grandchild), /teleconsult-bench-/, 'a child started later inherits the budget');
    // Two busy processes in a tenth of a core: the quota must throttle them within a few periods.
    let throttled = 0;
    for (let i = 0; i < 100 && throttled === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      throttled = budget.throttledS();
    }
    t.ok(throttled > 0, 'two busy processes in a tenth of a core are held back');

    process.kill(grandchild, 'SIGKILL');
    busy.kill('SIGKILL');
    await new Promise((resolve) => busy.once('exit', resolve));
    const root = fs.existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')
      ? '/sys/fs/cgroup/cpu'
      : '/sys/fs/cgroup';
    const dirs = (): string[] =>
      fs.readdirSync(root).filter((name) => name.startsWith(`teleconsult-bench-${process.pid}-`));
    t.equal(dirs().length, 1, 'one cgroup while the budget lives');
    await budget.close();
    t.same(dirs(), [], 'the cgroup is removed');
  },
);

void t.test('a budget must be positive', async (t) => {
  t.throws(() => CpuBudget.create(0), /must be positive/);
});
