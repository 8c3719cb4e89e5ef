import fs from 'node:fs';

/** The examination clip's size: 960x540 keeps three simulcast layers for the camera that plays it too. */
export const CLIP_WIDTH = 960;
export const CLIP_HEIGHT = 540;
const FPS = 15;
const FRAMES = 30;

/**
 * A fine-detail clip (I420, 4:2:0): a speckle texture with a 2-pixel grating, panning one pixel a
 * frame, like an otoscope held almost still over an eardrum. Chromium loops it.
 */
export function writeFineDetailClip(file: string): void {
  const texture = new Uint8Array((CLIP_WIDTH + FRAMES) * CLIP_HEIGHT);
  let seed = 0x2545f491;
  for (let y = 0; y < CLIP_HEIGHT; y++) {
    for (let x = 0; x < CLIP_WIDTH + FRAMES; x++) {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      const speckle = ((seed >>> 0) % 41) - 20;
      const grating = (x >> 1) % 2 === 0 ? 24 : -24;
      const vessel = 40 * Math.sin(x / 37 + Math.sin(y / 23));
      texture[y * (CLIP_WIDTH + FRAMES) + x] = Math.max(16, Math.min(235, 128 + speckle + grating + vessel));
    }
  }
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, `YUV4MPEG2 W${CLIP_WIDTH} H${CLIP_HEIGHT} F${FPS}:1 Ip A1:1 C420jpeg\n`);
    const luma = Buffer.alloc(CLIP_WIDTH * CLIP_HEIGHT);
    const chroma = Buffer.alloc((CLIP_WIDTH / 2) * (CLIP_HEIGHT / 2) * 2);
    for (let i = 0; i < chroma.length / 2; i++) chroma[i] = 110;
    for (let i = chroma.length / 2; i < chroma.length; i++) chroma[i] = 150;
    for (let f = 0; f < FRAMES; f++) {
      for (let y = 0; y < CLIP_HEIGHT; y++)
        for (let x = 0; x < CLIP_WIDTH; x++)
          luma[y * CLIP_WIDTH + x] = texture[y * (CLIP_WIDTH + FRAMES) + x + f]!;
      fs.writeSync(fd, 'FRAME\n');
      fs.writeSync(fd, luma);
      fs.writeSync(fd, chroma);
    }
  } finally {
    fs.closeSync(fd);
  }
}
