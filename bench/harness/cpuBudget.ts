import fs from 'node:fs';
import path from 'node:path';
import { TargetError } from './target.js';

/** A short scheduling period bounds how long a throttled target stays off the CPU (5 ms at 0.5 core). */
const PERIOD_US = 10_000;
const V1_ROOT = '/sys/fs/cgroup/cpu';
const V2_ROOT = '/sys/fs/cgroup';
const PREFIX = 'teleconsult-bench-';

type Flavour = 'v1' | 'v2';

/**
 * A CPU budget for the system under test: a cgroup with a CFS quota (cgroup v1 `cpu` controller or
 * v2 `cpu.max`) that the target's processes are moved into once started. On a small host where the
 * load generator shares the cores, giving every target the same budget makes the target, not the
 * generator, the first thing to run out of CPU, so that capacities compare. Needs root.
 */
export class CpuBudget {
  private constructor(
    private readonly dir: string,
    private readonly flavour: Flavour,
    readonly cores: number,
  ) {}

  static create(cores: number): CpuBudget {
    if (!(cores > 0)) throw new TargetError(`a CPU budget must be positive, got ${cores}`);
    const flavour = detectFlavour();
    if (!flavour) throw new TargetError('--cpu-budget needs a cgroup cpu controller (v1 or v2) and root');
    const root = flavour === 'v1' ? V1_ROOT : V2_ROOT;
    removeStale(root);
    if (flavour === 'v2') {
      // The root must hand the cpu controller down to its children; usually already the case.
      try {
        fs.writeFileSync(path.join(V2_ROOT, 'cgroup.subtree_control'), '+cpu');
      } catch {
        // Left as it is: mkdir or cpu.max below says whether the budget can work.
      }
    }
    const dir = path.join(root, `${PREFIX}${process.pid}-${Date.now()}`);
    try {
      fs.mkdirSync(dir);
      const quota = String(Math.max(1000, Math.round(cores * PERIOD_US)));
      if (flavour === 'v1') {
        fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
        fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), quota);
      } else {
        fs.writeFileSync(path.join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
      }
    } catch (error) {
      fs.rmSync(dir, { recursive: false, force: true });
      throw new TargetError(`cannot set up the CPU budget: ${(error as Error).message}`);
    }
    return new CpuBudget(dir, flavour, cores);
  }

  /** Moves a process (all of its threads) into the budget; its later children inherit it. */
  add(pid: number): void {
    try {
      fs.writeFileSync(path.join(this.dir, 'cgroup.procs'), String(pid));
    } catch (error) {
      // A process that is already gone has nothing left to budget.
      if (fs.existsSync(`/proc/${pid}`))
        throw new TargetError(`cannot budget process ${pid}: ${(error as Error).message}`);
    }
  }

  /** Seconds the budget held the target back (the CFS throttled time), cumulative. */
  throttledS(): number {
    try {
      const stat = fs.readFileSync(path.join(this.dir, 'cpu.stat'), 'utf8');
      const v1 = /^throttled_time (\d+)$/m.exec(stat);
      if (v1) return Number(v1[1]) / 1e9;
      const v2 = /^throttled_usec (\d+)$/m.exec(stat);
      return v2 ? Number(v2[1]) / 1e6 : 0;
    } catch {
      return 0;
    }
  }

  /** Removes the cgroup once its processes are gone (moving any survivor back to the root). */
  async close(): Promise<void> {
    const root = path.dirname(this.dir);
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        for (const pid of readProcs(this.dir)) fs.writeFileSync(path.join(root, 'cgroup.procs'), String(pid));
        fs.rmdirSync(this.dir);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}

function detectFlavour(): Flavour | undefined {
  if (fs.existsSync(path.join(V1_ROOT, 'cpu.cfs_quota_us'))) return 'v1';
  try {
    if (fs.readFileSync(path.join(V2_ROOT, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu'))
      return 'v2';
  } catch {
    // No unified hierarchy mounted there.
  }
  return undefined;
}

function readProcs(dir: string): number[] {
  return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

/** Budgets left by runs that were killed: removed when empty and their bench process is gone. */
function removeStale(root: string): void {
  for (const name of fs.readdirSync(root)) {
    if (!name.startsWith(PREFIX)) continue;
    const owner = Number(name.slice(PREFIX.length).split('-')[0]);
    if (Number.isFinite(owner) && fs.existsSync(`/proc/${owner}`)) continue;
    try {
      fs.rmdirSync(path.join(root, name));
    } catch {
      // Still has processes: left for the operator (its processes are listed in cgroup.procs).
    }
  }
}
