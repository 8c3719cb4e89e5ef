import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Probes for what a test needs from the host. Each one tries the capability for real (creating and
 * removing what it needs) and answers `false` when it works, or the precise reason why it does not,
 * ready for tap's `skip`. A capability that is present but broken is not a reason to skip: the probe
 * only reports what is missing or refused by the host, and the test itself then fails if our code is
 * at fault.
 */
export type SkipReason = false | string;

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function errorText(error: unknown): string {
  const e = error as NodeJS.ErrnoException & { stderr?: Buffer | string };
  const stderr = e.stderr ? String(e.stderr).trim() : '';
  return stderr || e.code || e.message;
}

/** A cgroup (v1 `cpu` controller or v2 `cpu.max`) that this process may create and give a quota. */
export function cgroupCpuQuota(): SkipReason {
  if (!isRoot()) return `a CPU budget needs root to create cgroups (running as uid ${process.getuid?.()})`;
  const v1 = '/sys/fs/cgroup/cpu';
  const v2 = '/sys/fs/cgroup';
  let root: string;
  let quotaFile: string;
  if (fs.existsSync(path.join(v1, 'cpu.cfs_quota_us'))) {
    root = v1;
    quotaFile = 'cpu.cfs_quota_us';
  } else {
    let controllers = '';
    try {
      controllers = fs.readFileSync(path.join(v2, 'cgroup.controllers'), 'utf8');
    } catch {
      return 'no cgroup cpu controller: neither /sys/fs/cgroup/cpu/cpu.cfs_quota_us (v1) nor /sys/fs/cgroup/cgroup.controllers (v2) exists';
    }
    if (!controllers.split(/\s+/).includes('cpu'))
      return `the cgroup v2 root does not offer the cpu controller (cgroup.controllers: "${controllers.trim()}")`;
    root = v2;
    quotaFile = 'cpu.max';
  }
  const probe = path.join(root, `teleconsult-probe-${process.pid}-${Date.now()}`);
  try {
    fs.mkdirSync(probe);
  } catch (error) {
    return `cannot create a cgroup under ${root}: ${errorText(error)}`;
  }
  try {
    if (!fs.existsSync(path.join(probe, quotaFile)))
      return `a new cgroup under ${root} has no ${quotaFile} (the cpu controller is not delegated to it)`;
    fs.writeFileSync(path.join(probe, quotaFile), quotaFile === 'cpu.max' ? '10000 100000' : '10000');
    return false;
  } catch (error) {
    return `cannot set a CPU quota in ${root}: ${errorText(error)}`;
  } finally {
    try {
      fs.rmdirSync(probe);
    } catch {
      // An empty probe cgroup that cannot be removed is harmless and named after this process.
    }
  }
}

/**
 * A network namespace joined by a veth pair, optionally with a tbf rate cap on the root side: what
 * the impaired-link and Janus tests build. Tried for real, then removed.
 */
export function networkNamespaces(options: { tbf?: boolean } = {}): SkipReason {
  if (!isRoot()) return `network namespaces need root (running as uid ${process.getuid?.()})`;
  const tag = `tp${process.pid.toString(36)}`;
  const ip = (...args: string[]): void => {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'the ip command (Debian package iproute2) is not installed';
  }
  try {
    ip('netns', 'add', tag);
  } catch (error) {
    return `cannot create a network namespace: ${errorText(error)}`;
  }
  try {
    try {
      ip('link', 'add', `${tag}r`, 'type', 'veth', 'peer', 'name', `${tag}n`);
      ip('link', 'set', `${tag}n`, 'netns', tag);
    } catch (error) {
      return `cannot create a veth pair into a namespace: ${errorText(error)}`;
    }
    if (options.tbf) {
      try {
        ip('link', 'set', `${tag}r`, 'up');
        execFileSync(
          'tc',
          [
            'qdisc',
            'add',
            'dev',
            `${tag}r`,
            'root',
            'tbf',
            'rate',
            '1mbit',
            'burst',
            '32kbit',
            'latency',
            '50ms',
          ],
          { stdio: ['ignore', 'ignore', 'pipe'] },
        );
      } catch (error) {
        return `cannot add a tbf rate cap with tc: ${errorText(error)}`;
      }
    }
    return false;
  } finally {
    try {
      ip('link', 'del', `${tag}r`);
    } catch {
      // Never created, or already gone with its peer.
    }
    try {
      ip('netns', 'del', tag);
    } catch {
      // Nothing to remove.
    }
  }
}
