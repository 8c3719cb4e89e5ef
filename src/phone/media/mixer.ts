/**
 * Mixes the audio of several sources into 8 kHz frames for the phone: each source has a bounded FIFO
 * of decoded samples; a frame is the clipped sum of what each source has ready.
 */

/** Samples a source may hold (200 ms): beyond it the oldest are dropped, bounding delay and memory. */
const MAX_BUFFERED_SAMPLES = 1600;
/** Samples a source must hold before it is played again after running dry (40 ms of jitter room). */
const PRIME_SAMPLES = 320;

class SampleFifo {
  private readonly data = new Int16Array(MAX_BUFFERED_SAMPLES);
  private start = 0;
  private length = 0;
  primed = false;

  get size(): number {
    return this.length;
  }

  push(samples: Int16Array): void {
    for (let i = 0; i < samples.length; i++) {
      if (this.length === MAX_BUFFERED_SAMPLES) {
        this.start = (this.start + 1) % MAX_BUFFERED_SAMPLES;
        this.length--;
      }
      this.data[(this.start + this.length) % MAX_BUFFERED_SAMPLES] = samples[i] ?? 0;
      this.length++;
    }
    if (this.length >= PRIME_SAMPLES) this.primed = true;
  }

  /** Adds up to `out.length` samples into `out` (32-bit accumulator). */
  addInto(out: Int32Array): void {
    if (!this.primed) return;
    const count = Math.min(out.length, this.length);
    for (let i = 0; i < count; i++)
      out[i] = (out[i] ?? 0) + (this.data[(this.start + i) % MAX_BUFFERED_SAMPLES] ?? 0);
    this.start = (this.start + count) % MAX_BUFFERED_SAMPLES;
    this.length -= count;
    if (this.length === 0) this.primed = false;
  }
}

export class AudioMixer {
  private readonly sources = new Map<string, SampleFifo>();
  private readonly accumulator: Int32Array;

  constructor(readonly frameSamples = 160) {
    this.accumulator = new Int32Array(frameSamples);
  }

  get sourceCount(): number {
    return this.sources.size;
  }

  addSource(id: string): void {
    if (!this.sources.has(id)) this.sources.set(id, new SampleFifo());
  }

  removeSource(id: string): void {
    this.sources.delete(id);
  }

  push(id: string, samples: Int16Array): void {
    this.sources.get(id)?.push(samples);
  }

  /** Fills `out` with the next frame: the sum of all sources, clipped to 16 bits. */
  mix(out: Int16Array): Int16Array {
    this.accumulator.fill(0);
    for (const fifo of this.sources.values()) fifo.addInto(this.accumulator);
    for (let i = 0; i < out.length; i++) {
      const sum = this.accumulator[i] ?? 0;
      out[i] = sum > 32767 ? 32767 : sum < -32768 ? -32768 : sum;
    }
    return out;
  }
}
