import { execFileSync } from 'node:child_process';
import os from 'node:os';

/**
 * A network namespace joined to ours by a veth pair on a private /30 of our own. Janus (libnice)
 * gathers no loopback candidates and must never see the machine's real interfaces: it runs inside
 * the namespace, the load peers bind to the root side of the veth.
 */
export interface JanusNetwork {
  namespace: string;
  /** Root side of the veth: the load peers bind here. */
  hostAddress: string;
  /** Namespace side: Janus's HTTP API and ICE candidates. */
  janusAddress: string;
  /** The namespace's veth, for Janus's `ice_enforce_list`. */
  janusInterface: string;
}

export class JanusNetworkError extends Error {
  override readonly name = 'JanusNetworkError';
}

/** Every namespace we create starts with this and ends with the creating process's pid. */
const PREFIX = 'jbench-';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills whatever still runs in a namespace (a Janus left by a killed run), then deletes it. */
function destroyNamespace(namespace: string): void {
  let pids: number[] = [];
  try {
    pids = ip('netns', 'pids', namespace).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Already gone.
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  }
  try {
    // Deleting the namespace deletes its veth end, which deletes the pair.
    ip('netns', 'delete', namespace);
  } catch {
    // Already gone.
  }
}

/** Removes namespaces of earlier runs whose process is gone (killed before its clean-up). */
export function removeStaleNetworks(log: (line: string) => void): void {
  let names: string[];
  try {
    names = ip('netns', 'list')
      .split('\n')
      .map((line) => line.split(' ')[0] ?? '')
      .filter((name) => name.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const owner = Number(name.slice(PREFIX.length).split('-')[0]);
    if (Number.isInteger(owner) && owner !== process.pid && alive(owner)) continue;
    log(`janus: removing stale namespace ${name}`);
    destroyNamespace(name);
  }
}

function addressInUse(prefix: string): boolean {
  for (const list of Object.values(os.networkInterfaces())) {
    if (list?.some((a) => a.address.startsWith(prefix))) return true;
  }
  return false;
}

let created = 0;

/** Creates the namespace and veth pair; throws JanusNetworkError when not root or `ip` fails. */
export function createJanusNetwork(): JanusNetwork {
  if (process.getuid?.() !== 0)
    throw new JanusNetworkError('the janus target needs root (network namespace)');
  const id = `${process.pid}-${created++}`;
  const namespace = `${PREFIX}${id}`;
  // Interface names are limited to 15 characters.
  const tag = `${process.pid % 100000}${created}`.slice(-9);
  const hostInterface = `jbh${tag}`;
  const janusInterface = `jbn${tag}`;
  // A /30 in 10.231.x.0/24 picked from the pid, skipping subnets another run (or anyone) uses.
  let third = process.pid % 250;
  for (let tries = 0; tries < 250 && addressInUse(`10.231.${third}.`); tries++) third = (third + 1) % 250;
  const hostAddress = `10.231.${third}.1`;
  const janusAddress = `10.231.${third}.2`;
  try {
    ip('netns', 'add', namespace);
    ip('link', 'add', hostInterface, 'type', 'veth', 'peer', 'name', janusInterface);
    ip('link', 'set', janusInterface, 'netns', namespace);
    ip('addr', 'add', `${hostAddress}/30`, 'dev', hostInterface);
    ip('link', 'set', hostInterface, 'up');
    ip('-n', namespace, 'addr', 'add', `${janusAddress}/30`, 'dev', janusInterface);
    ip('-n', namespace, 'link', 'set', janusInterface, 'up');
    ip('-n', namespace, 'link', 'set', 'lo', 'up');
  } catch (error) {
    destroyNetwork({ namespace, hostAddress, janusAddress, janusInterface });
    try {
      ip('link', 'delete', hostInterface);
    } catch {
      // Never created, or gone with the namespace.
    }
    const stderr = (error as { stderr?: Buffer | string }).stderr;
    throw new JanusNetworkError(`cannot create the janus network namespace: ${String(stderr ?? error)}`);
  }
  return { namespace, hostAddress, janusAddress, janusInterface };
}

export function destroyNetwork(network: JanusNetwork): void {
  destroyNamespace(network.namespace);
}
