import { randomInt } from 'node:crypto';

const used = new Set<number>();

/** A random SSRC not yet handed out in this process (peers of one process share routers). */
export function newSsrc(): number {
  for (;;) {
    const ssrc = randomInt(0x10000, 0xfffffff0);
    if (!used.has(ssrc)) {
      used.add(ssrc);
      return ssrc;
    }
  }
}

export function newCname(): string {
  return `bench-${randomInt(0, 0xffffffff).toString(16)}`;
}
