import fs from 'node:fs';

/**
 * The environment variable our worker build reads to size its UDP sockets' receive buffers
 * (mediasoup 3.12 has no setting; see scripts/build-worker.mjs).
 */
export const WORKER_RECV_BUFFER_ENV = 'TELECONSULT_UDP_RECV_BUFFER_BYTES';

const RMEM_MAX_PATH = '/proc/sys/net/core/rmem_max';

/**
 * Sets the receive buffer size for workers spawned from now on. mediasoup hands this process's
 * environment to each worker it spawns, and offers no other way in; 0 leaves the kernel default.
 */
export function setWorkerReceiveBuffer(bytes: number): void {
  if (bytes > 0) process.env[WORKER_RECV_BUFFER_ENV] = String(bytes);
  else delete process.env[WORKER_RECV_BUFFER_ENV];
}

/** The kernel's cap on a socket's requested receive buffer (`net.core.rmem_max`), when readable. */
export function kernelReceiveBufferCap(): number | undefined {
  try {
    const value = Number.parseInt(fs.readFileSync(RMEM_MAX_PATH, 'utf8').trim(), 10);
    return Number.isFinite(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}
