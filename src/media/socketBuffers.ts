import fs from 'node:fs';

const RMEM_MAX_PATH = '/proc/sys/net/core/rmem_max';

/**
 * The listen-info fields that size a UDP socket's receive buffer: a WebRtcServer's one UDP socket
 * per worker carries every transport of that worker, and the kernel default (net.core.rmem_default,
 * often 208 KiB: a few milliseconds of a busy worker's traffic) drops datagrams whenever the worker
 * is descheduled that long. 0 keeps the kernel default; the kernel caps the size at rmem_max.
 */
export function udpReceiveBufferOption(bytes: number): { recvBufferSize?: number } {
  return bytes > 0 ? { recvBufferSize: bytes } : {};
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
