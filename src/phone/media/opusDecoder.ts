import OpusScript from 'opusscript';

/**
 * Decodes Opus straight to 8 kHz mono: libopus resamples and downmixes inside the decoder, which is
 * cheaper than decoding at 48 kHz and resampling in JavaScript.
 */
export class OpusToNarrowband {
  private readonly decoder = new OpusScript(8000, 1, OpusScript.Application.VOIP);
  private deleted = false;

  /** Samples of one packet; undefined when libopus refuses the packet. */
  decode(packet: Buffer): Int16Array | undefined {
    if (this.deleted || packet.length === 0) return undefined;
    try {
      const pcm = this.decoder.decode(packet);
      return new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + (pcm.length & ~1)));
    } catch {
      return undefined;
    }
  }

  close(): void {
    if (this.deleted) return;
    this.deleted = true;
    this.decoder.delete();
  }
}
