/**
 * Synthetic VP8 payloads that a mediasoup worker treats as real: an extended payload descriptor
 * with a 15-bit PictureID (mediasoup rewrites it across simulcast layers) and, on keyframes, the
 * frame tag, start code 9d 01 2a, width and height. Without those the worker never sees a keyframe
 * and forwards no video.
 */

/** Descriptor: X|S flags, I flag, two-byte PictureID. */
export const VP8_DESCRIPTOR_SIZE = 4;
/** Frame tag (3) + start code (3) + width (2) + height (2). */
export const VP8_KEYFRAME_HEADER_SIZE = 10;
/** Frame tag only. */
export const VP8_INTERFRAME_HEADER_SIZE = 3;

/** Writes the payload descriptor; `start` marks the first packet of a frame. */
export function writeVp8Descriptor(buf: Buffer, offset: number, start: boolean, pictureId: number): void {
  buf[offset] = start ? 0x90 : 0x80; // X=1, S=start, partition 0
  buf[offset + 1] = 0x80; // I=1: PictureID present
  buf[offset + 2] = 0x80 | ((pictureId >> 8) & 0x7f); // M=1: 15-bit PictureID
  buf[offset + 3] = pictureId & 0xff;
}

/**
 * Writes the VP8 frame header at the start of a frame's first partition and returns its size.
 * The first-partition size is arbitrary but plausible: nothing on the path decodes it.
 */
export function writeVp8FrameHeader(
  buf: Buffer,
  offset: number,
  keyframe: boolean,
  width: number,
  height: number,
  firstPartitionSize: number,
): number {
  const size = firstPartitionSize & 0x7ffff;
  // Bit 0: P (0 = keyframe), bits 1-3: version 0, bit 4: show_frame, bits 5-23: first partition size.
  const tag = (keyframe ? 0 : 1) | (1 << 4) | (size << 5);
  buf[offset] = tag & 0xff;
  buf[offset + 1] = (tag >> 8) & 0xff;
  buf[offset + 2] = (tag >> 16) & 0xff;
  if (!keyframe) return VP8_INTERFRAME_HEADER_SIZE;
  buf[offset + 3] = 0x9d;
  buf[offset + 4] = 0x01;
  buf[offset + 5] = 0x2a;
  buf.writeUInt16LE(width & 0x3fff, offset + 6);
  buf.writeUInt16LE(height & 0x3fff, offset + 8);
  return VP8_KEYFRAME_HEADER_SIZE;
}

/**
 * When the payload (descriptor first) starts a VP8 keyframe, its width in pixels (the keyframe test
 * mirrors the worker's own); undefined otherwise. 0 when the keyframe header is cut short.
 */
export function vp8KeyframeWidth(payload: Buffer, offset: number, end: number): number | undefined {
  if (end - offset < 1) return undefined;
  const b0 = payload[offset]!;
  const start = (b0 & 0x10) !== 0;
  if (!start || (b0 & 0x07) !== 0) return undefined;
  let o = offset + 1;
  if (b0 & 0x80) {
    if (o >= end) return undefined;
    const x = payload[o]!;
    o++;
    if (x & 0x80) {
      if (o >= end) return undefined;
      o += payload[o]! & 0x80 ? 2 : 1;
    }
    if (x & 0x40) o++;
    if (x & 0x30) o++;
  }
  if (o >= end || (payload[o]! & 0x01) !== 0) return undefined;
  if (o + VP8_KEYFRAME_HEADER_SIZE > end) return 0;
  return payload.readUInt16LE(o + 6) & 0x3fff;
}

/** True when the payload (descriptor first) starts a VP8 keyframe. */
export function isVp8KeyframeStart(payload: Buffer, offset: number, end: number): boolean {
  return vp8KeyframeWidth(payload, offset, end) !== undefined;
}
