import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { SfuError } from '../errors/catalogue.js';
import { ConsentPurposeSchema } from '../protocol/messages.js';

export const ConsentPurpose = ConsentPurposeSchema;
export type ConsentPurpose = Static<typeof ConsentPurpose>;

export const ConsentTextInput = Type.Object(
  {
    textId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' }),
    version: Type.String({ minLength: 1, maxLength: 32, pattern: '^[0-9A-Za-z._-]+$' }),
    purpose: ConsentPurpose,
    locale: Type.String({ pattern: '^[a-z]{2}(-[A-Z]{2})?$' }),
    text: Type.String({ minLength: 1, maxLength: 20000 }),
  },
  { additionalProperties: false },
);
export type ConsentTextInput = Static<typeof ConsentTextInput>;
export type ConsentText = ConsentTextInput & { hash: string; registeredAt: string };
const fileCheck = TypeCompiler.Compile(
  Type.Array(
    Type.Intersect([ConsentTextInput, Type.Object({ hash: Type.String(), registeredAt: Type.String() })]),
  ),
);

/** The hash a patient's consent refers to: SHA-256 of the exact text shown. */
export function consentHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Used until the platform registers its own texts, so a fresh server can run a consultation. */
const BUILTIN: ConsentTextInput[] = [
  {
    textId: 'builtin-teleconsultation',
    version: '1',
    purpose: 'teleconsultation',
    locale: 'fr',
    text:
      "J'accepte de réaliser cet acte en téléconsultation. J'ai été informé(e) de ses modalités, de ses limites " +
      "et de la possibilité d'y mettre fin à tout moment. Aucun enregistrement audio ou vidéo n'est conservé.",
  },
  {
    textId: 'builtin-third-party',
    version: '1',
    purpose: 'third-party',
    locale: 'fr',
    text: "J'accepte qu'une tierce personne (proche, interprète ou professionnel) assiste à la téléconsultation.",
  },
];

/**
 * Versioned consent texts per purpose. The latest registered version of a purpose is the one a
 * patient is shown and must accept; the journal keeps its id, version and hash. Registrations are
 * persisted (atomic file replace) so they survive restarts.
 */
export class ConsentRegistry {
  private readonly texts: ConsentText[] = [];
  private readonly file: string | undefined;

  constructor(dir: string | undefined) {
    this.file = dir ? path.join(dir, 'consent-texts.json') : undefined;
    if (this.file && fs.existsSync(this.file)) {
      const parsed: unknown = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      if (!fileCheck.Check(parsed)) throw new Error(`${this.file} is not a valid consent text store`);
      this.texts.push(...(parsed as ConsentText[]));
    }
  }

  register(input: ConsentTextInput): ConsentText {
    const existing = this.texts.find((t) => t.textId === input.textId && t.version === input.version);
    const hash = consentHash(input.text);
    if (existing) {
      if (existing.hash !== hash)
        throw new SfuError('INVALID_STATE', 'this text id and version exist with another text');
      return existing;
    }
    const text: ConsentText = { ...input, hash, registeredAt: new Date().toISOString() };
    this.texts.push(text);
    this.persist();
    return text;
  }

  /** The text a patient must accept now for this purpose (the platform's latest, else the built-in). */
  current(purpose: ConsentPurpose): ConsentText {
    for (let i = this.texts.length - 1; i >= 0; i--) {
      const text = this.texts[i];
      if (text?.purpose === purpose) return text;
    }
    const builtin = BUILTIN.find((b) => b.purpose === purpose) ?? BUILTIN[0]!;
    return { ...builtin, hash: consentHash(builtin.text), registeredAt: '1970-01-01T00:00:00.000Z' };
  }

  currentAll(): ConsentText[] {
    return (['teleconsultation', 'third-party', 'secondary-use'] as const)
      .filter((p) => p !== 'secondary-use' || this.texts.some((t) => t.purpose === p))
      .map((p) => this.current(p));
  }

  list(): readonly ConsentText[] {
    return this.texts;
  }

  private persist(): void {
    if (!this.file) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fd = fs.openSync(tmp, 'w');
    fs.writeSync(fd, JSON.stringify(this.texts, null, 1));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, this.file);
  }
}
