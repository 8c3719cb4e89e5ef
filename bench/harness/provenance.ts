import { execFileSync } from 'node:child_process';
import os from 'node:os';

/**
 * Where a report comes from, written into every report so that a figure quoted in the docs can be
 * traced to the command, the code and the machine that produced it, and judged against the load the
 * host carried while it ran (a shared 2-core host moves every figure).
 */
export interface Provenance {
  /** The bench command line, as typed after `npm run bench --`. */
  command: string;
  /** The commit of the tree that ran, and whether it had uncommitted changes. */
  commit: string;
  dirty: boolean;
  machine: { cores: number; model: string; memoryGiB: number; kernel: string; node: string };
  /** 1, 5 and 15 minute load averages when the run started and when its report was written. */
  loadAverage: { start: number[]; end: number[] };
  startedAt: string;
  finishedAt: string;
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

const loadAverage = (): number[] => os.loadavg().map((l) => Math.round(l * 100) / 100);

/** Captured when a run starts; `finish()` stamps the end, once per report written. */
export class ProvenanceRecorder {
  private readonly start = loadAverage();
  private readonly startedAt = new Date().toISOString();
  private readonly commit = git(['rev-parse', 'HEAD']) ?? 'unknown';
  // Build outputs and the reports being written do not make the tree dirty.
  private readonly dirty =
    (git(['status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/reference']) ?? '') !== '';

  constructor(private readonly argv: readonly string[]) {}

  finish(): Provenance {
    const cpus = os.cpus();
    return {
      command: ['npm run bench --', ...this.argv].join(' '),
      commit: this.commit,
      dirty: this.dirty,
      machine: {
        cores: cpus.length,
        model: cpus[0]?.model.trim() ?? 'unknown',
        memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
        kernel: os.release(),
        node: process.version,
      },
      loadAverage: { start: this.start, end: loadAverage() },
      startedAt: this.startedAt,
      finishedAt: new Date().toISOString(),
    };
  }
}

/** The provenance as one Markdown paragraph, for the top of a report. */
export function renderProvenance(p: Provenance): string {
  return (
    `Command \`${p.command}\` at commit ${p.commit.slice(0, 12)}${p.dirty ? ' (with uncommitted changes)' : ''}; ` +
    `${p.machine.cores} × ${p.machine.model}, ${p.machine.memoryGiB} GiB, Linux ${p.machine.kernel}, Node ${p.machine.node}; ` +
    `load average ${p.loadAverage.start.join(' / ')} at the start, ${p.loadAverage.end.join(' / ')} at the end ` +
    `(${p.startedAt} to ${p.finishedAt}).`
  );
}
