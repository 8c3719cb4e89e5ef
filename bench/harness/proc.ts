import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let clockTicks: number | undefined;

/** Kernel clock ticks per second (USER_HZ), the unit of utime/stime in /proc/<pid>/stat. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * CPU seconds (user + system) a process has used so far; undefined once it is gone. /proc/<pid>/stat
 * counts every thread, the exited ones too, but in clock ticks (10 ms): too coarse for a server that
 * idles through a short window. The threads' schedstat run times are in nanoseconds but miss exited
 * threads. The larger of the two is within a tick of the truth either way.
 */
export function cpuSeconds(pid: number): number | undefined {
  const ticks = tickCpuSeconds(pid);
  if (ticks === undefined) return undefined;
  return Math.max(ticks, threadRunSeconds(pid));
}

/** Sum of the live threads' run times from /proc/<pid>/task/<tid>/schedstat (0 where unavailable). */
function threadRunSeconds(pid: number): number {
  let ns = 0;
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      const value = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      if (Number.isFinite(value)) ns += value;
    } catch {
      // The thread exited between the listing and the read.
    }
  }
  return ns / 1e9;
}

function tickCpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: split after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of the file are utime and stime; here they sit at indices 11 and 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / ticksPerSecond();
}

export interface MemorySample {
  rssMiB: number;
  peakRssMiB: number;
}

/** Resident and peak resident memory (VmRSS, VmHWM) in MiB; undefined once the process is gone. */
export function memory(pid: number): MemorySample | undefined {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024 };
}

export interface CpuSnapshot {
  at: number;
  server: number;
  workers: number;
}

/** Sums CPU seconds of the server process and of the workers; processes that vanished count 0. */
export function snapshotCpu(pids: { server?: number; workers: number[] }): CpuSnapshot {
  return {
    at: performance.now(),
    server: pids.server !== undefined ? (cpuSeconds(pids.server) ?? 0) : 0,
    workers: pids.workers.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0),
  };
}

export function sumMemory(pids: number[]): MemorySample {
  let rssMiB = 0;
  let peakRssMiB = 0;
  for (const pid of pids) {
    const m = memory(pid);
    if (!m) continue;
    rssMiB += m.rssMiB;
    peakRssMiB += m.peakRssMiB;
  }
  return { rssMiB, peakRssMiB };
}

export interface UdpCounters {
  rcvbufErrors: number;
  sndbufErrors: number;
  inErrors: number;
}

/**
 * Host-wide UDP error counters from /proc/net/snmp. Buffer overflows there are the usual cause of
 * loss on loopback: a starved process does not drain its socket in time. Zeros when unreadable.
 */
export function udpCounters(): UdpCounters {
  try {
    const lines = fs
      .readFileSync('/proc/net/snmp', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('Udp:'));
    const names = lines[0]?.split(/\s+/) ?? [];
    const values = lines[1]?.split(/\s+/) ?? [];
    const get = (name: string): number => Number(values[names.indexOf(name)] ?? 0) || 0;
    return {
      rcvbufErrors: get('RcvbufErrors'),
      sndbufErrors: get('SndbufErrors'),
      inErrors: get('InErrors'),
    };
  } catch {
    return { rcvbufErrors: 0, sndbufErrors: 0, inErrors: 0 };
  }
}

function dropsByInode(): Map<number, number> {
  const drops = new Map<number, number>();
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 13) continue;
      drops.set(Number(cols[9]), Number(cols[cols.length - 1]) || 0);
    }
  }
  return drops;
}

function socketInodes(pid: number): number[] {
  const inodes: number[] = [];
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.push(Number(match[1]));
    } catch {
      // The descriptor closed while we listed them.
    }
  }
  return inodes;
}

/**
 * Datagrams the kernel dropped on the UDP sockets each group of processes owns (receive buffer
 * full): tells whether loss happened at the server's sockets or at the load generator's.
 */
export function udpDrops(groups: Record<string, number[]>): Record<string, number> {
  const drops = dropsByInode();
  const out: Record<string, number> = {};
  for (const [name, pids] of Object.entries(groups)) {
    let sum = 0;
    for (const pid of pids) for (const inode of socketInodes(pid)) sum += drops.get(inode) ?? 0;
    out[name] = sum;
  }
  return out;
}
