import fs from 'node:fs';
import path from 'node:path';
import { decodeG711 } from './media/g711.js';

/** Every prompt the gateway speaks; `scripts/make-prompts.sh` generates one file per name and language. */
export const PROMPT_NAMES = [
  'welcome',
  'pin-invalid',
  'pin-failed',
  'locked',
  'notice',
  'dial-out-intro',
  'consent',
  'waiting',
  'admitted',
  'declined',
  'goodbye',
] as const;

export type PromptName = (typeof PROMPT_NAMES)[number];
export type PromptLanguage = 'fr' | 'en';

/** A prompt longer than this is refused at load (a wrong file, not speech). */
const MAX_PROMPT_BYTES = 8000 * 60;

/**
 * Loads the prompts of one language (8 kHz mono μ-law raw, `<dir>/<lang>/<name>.ulaw`) as linear
 * samples, once at start-up: a missing or oversized file fails the start, not a call.
 */
export function loadPrompts(dir: string, language: PromptLanguage): ReadonlyMap<PromptName, Int16Array> {
  const prompts = new Map<PromptName, Int16Array>();
  for (const name of PROMPT_NAMES) {
    const file = path.join(dir, language, `${name}.ulaw`);
    const bytes = fs.readFileSync(file);
    if (bytes.length === 0 || bytes.length > MAX_PROMPT_BYTES)
      throw new Error(`prompt ${file} has an unexpected size`);
    prompts.set(name, decodeG711('PCMU', bytes));
  }
  return prompts;
}
