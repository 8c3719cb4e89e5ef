import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where Debian's janus package keeps its configuration and modules. */
export const DEBIAN_CONFIG_DIR = '/etc/janus';
const MODULES_DIR = '/usr/lib/x86_64-linux-gnu/janus';

export interface JanusConfigOptions {
  /** Namespace address the HTTP API listens on and ICE uses. */
  address: string;
  /** The namespace's veth: the only interface Janus gathers candidates on. */
  iceInterface: string;
  httpPort: number;
}

/** Modules Janus loads: the VideoRoom plugin and the HTTP transport, nothing else (fair CPU). */
function disabledModules(folder: string, keep: string): string {
  let names: string[] = [];
  try {
    names = fs.readdirSync(folder).filter((n) => /^libjanus_[a-z0-9]+\.so$/.test(n));
  } catch {
    // Folder missing: nothing to disable.
  }
  return names.filter((n) => n !== keep).join(',');
}

/**
 * Copies Debian's /etc/janus to a temporary folder and overwrites the three files the bench needs:
 * janus.jcfg (ICE on the namespace's veth only, no other plugins, transports, loggers or event
 * handlers), the HTTP transport on the namespace address, and a VideoRoom with no predefined
 * rooms. Returns the folder (delete it after the run).
 */
export function writeJanusConfig(options: JanusConfigOptions): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'janus-bench-'));
  fs.cpSync(DEBIAN_CONFIG_DIR, dir, { recursive: true });
  const plugins = disabledModules(path.join(MODULES_DIR, 'plugins'), 'libjanus_videoroom.so');
  const transports = disabledModules(path.join(MODULES_DIR, 'transports'), 'libjanus_http.so');
  const loggers = disabledModules(path.join(MODULES_DIR, 'loggers'), '');
  const events = disabledModules(path.join(MODULES_DIR, 'events'), '');
  fs.writeFileSync(
    path.join(dir, 'janus.jcfg'),
    `# Written by bench/targets/janus: the load benchmark's Janus, inside its network namespace.
general: {
	configs_folder = "${dir}"
	plugins_folder = "${MODULES_DIR}/plugins"
	transports_folder = "${MODULES_DIR}/transports"
	events_folder = "${MODULES_DIR}/events"
	loggers_folder = "${MODULES_DIR}/loggers"
	debug_level = 3
	admin_secret = "bench-${Math.random().toString(36).slice(2)}"
	session_timeout = 60
	hide_dependencies = true
}
certificates: {
}
media: {
	ipv6 = false
}
nat: {
	nice_debug = false
	full_trickle = false
	ice_enforce_list = "${options.iceInterface}"
}
plugins: {
	disable = "${plugins}"
}
transports: {
	disable = "${transports}"
}
loggers: {
	disable = "${loggers}"
}
events: {
	broadcast = false
	disable = "${events}"
}
`,
  );
  fs.writeFileSync(
    path.join(dir, 'janus.transport.http.jcfg'),
    `general: {
	json = "plain"
	base_path = "/janus"
	http = true
	port = ${options.httpPort}
	ip = "${options.address}"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
cors: {
}
certificates: {
}
`,
  );
  fs.writeFileSync(
    path.join(dir, 'janus.plugin.videoroom.jcfg'),
    // No admin_key: any session may create rooms, as the bench does (one per consultation).
    'general: {\n}\n',
  );
  return dir;
}
