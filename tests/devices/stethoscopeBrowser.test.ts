import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import type * as Sdk from '../../src/sdk/index.js';
import { buildSdkBundle, waitFor } from '../browser/harness.js';
import { chromiumAvailable, launchBrowser, localhostUrl } from '../support/browser.js';
import { startTestServer } from '../support/server.js';

/**
 * The stethoscope profile in Chromium, with a fake audio input that plays a WAV of heart-like
 * sounds the test writes: the published track has echo cancellation, noise suppression and gain
 * control off, and at the practitioner the 20-200 Hz energy is within 3 dB of the signal sent. The
 * ordinary microphone path (processing on, voice Opus) carries the same input to the patient. Its
 * gain control changes the whole level, so the two paths are compared by spectral shape: the
 * 20-200 Hz energy relative to a 500-2000 Hz band that every beat also carries (a valve click), so
 * a broadband gain cancels out and what is left is what the path does to the low band.
 */
const skip = (await chromiumAvailable()) ? false : 'chromium is not installed';
const RATE = 48_000;

/**
 * Lub-dub at 72 beats a minute: damped bursts at 45+90 Hz (S1) and 65+130 Hz (S2), each with a
 * short click at 800+1300 Hz at its onset (the reference band's energy, sent in the same beats).
 */
function heartSample(i: number, rate: number): number {
  const period = rate * (60 / 72);
  const inBeat = i % period;
  const burst = (start: number, length: number, f1: number, f2: number) => {
    const n = inBeat - start * rate;
    if (n < 0 || n > length * rate) return 0;
    const time = n / rate;
    const envelope = Math.sin((Math.PI * time) / length) * Math.exp(-time * 12);
    return envelope * (0.6 * Math.sin(2 * Math.PI * f1 * time) + 0.4 * Math.sin(2 * Math.PI * f2 * time));
  };
  const click = (start: number) => {
    const n = inBeat - start * rate;
    if (n < 0 || n > 0.04 * rate) return 0;
    const time = n / rate;
    const envelope = Math.sin((Math.PI * time) / 0.04);
    return envelope * (0.5 * Math.sin(2 * Math.PI * 800 * time) + 0.5 * Math.sin(2 * Math.PI * 1300 * time));
  };
  return 0.7 * (burst(0, 0.12, 45, 90) + 0.8 * burst(0.32, 0.09, 65, 130)) + 0.2 * (click(0) + click(0.32));
}

function writeWav(file: string, seconds: number): void {
  const samples = Math.round(seconds * RATE);
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++)
    data.writeInt16LE(Math.round(Math.max(-1, Math.min(1, heartSample(i, RATE))) * 32767), i * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(RATE, 24);
  header.writeUInt32LE(RATE * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  fs.writeFileSync(file, Buffer.concat([header, data]));
}

declare global {
  interface Window {
    stethTest?: {
      room: Sdk.Room;
      bandEnergy: (track: MediaStreamTrack | 'reference') => Promise<BandEnergy>;
    };
  }
}

interface BandEnergy {
  /** 20-200 Hz, dB (relative: compared between paths). */
  low: number;
  /** 500-2000 Hz, dB: the reference band (the clicks). */
  mid: number;
  /** 20-20 000 Hz. */
  total: number;
}

/** Joins, and installs the band-energy meter (Web Audio, averaged over whole heartbeats). */
async function join(page: Page, url: string, token: string): Promise<void> {
  await page.evaluate(
    async ({ url, token, generator }) => {
      const sdk = (await import(['/sdk', 'teleconsult-sdk.js'].join('/'))) as typeof Sdk;
      const room = await sdk.connect(url, token, { handlerName: 'Chrome111', locale: 'en' });
      // eslint-disable-next-line @typescript-eslint/no-implied-eval
      const load = new Function(`return (${generator})`) as () => (i: number, rate: number) => number;
      const sample = load();
      const bandEnergy = async (input: MediaStreamTrack | 'reference'): Promise<BandEnergy> => {
        const ctx = new AudioContext({ sampleRate: 48_000 });
        await ctx.resume();
        const analyser = ctx.createAnalyser();
        analyser.fftSize = 16_384;
        analyser.smoothingTimeConstant = 0;
        let keep: HTMLAudioElement | undefined;
        if (input === 'reference') {
          const buffer = ctx.createBuffer(1, 48_000 * 5, 48_000);
          const data = buffer.getChannelData(0);
          for (let i = 0; i < data.length; i++) data[i] = sample(i, 48_000);
          const source = ctx.createBufferSource();
          source.buffer = buffer;
          source.loop = true;
          source.connect(analyser);
          source.start();
        } else {
          const stream = new MediaStream([input]);
          // Chromium feeds a remote track to Web Audio only while a media element plays it.
          keep = new Audio();
          keep.muted = true;
          keep.srcObject = stream;
          await keep.play().catch(() => undefined);
          ctx.createMediaStreamSource(stream).connect(analyser);
        }
        const bins = new Float32Array(analyser.frequencyBinCount);
        const power = new Float64Array(bins.length);
        const hz = ctx.sampleRate / analyser.fftSize;
        let frames = 0;
        const until = performance.now() + 5_000; // six heartbeats
        await new Promise((resolve) => setTimeout(resolve, 500));
        while (performance.now() < until) {
          analyser.getFloatFrequencyData(bins);
          for (let b = 0; b < bins.length; b++) power[b]! += 10 ** ((bins[b] ?? -200) / 10);
          frames++;
          await new Promise((resolve) => setTimeout(resolve, 40));
        }
        const band = (from: number, to: number) => {
          let sum = 0;
          for (let b = Math.ceil(from / hz); b <= Math.floor(to / hz); b++) sum += power[b]! / frames;
          return 10 * Math.log10(sum);
        };
        keep?.pause();
        await ctx.close();
        return { low: band(20, 200), mid: band(500, 2000), total: band(20, 20_000) };
      };
      window.stethTest = { room, bandEnergy };
    },
    { url, token, generator: heartSample.toString() },
  );
}

t.test(
  'a stethoscope keeps its low frequencies end to end; the microphone path loses more of them',
  { skip },
  async (t) => {
    const wav = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'steth-')), 'heart.wav');
    writeWav(wav, 10);
    t.teardown(() => fs.rmSync(path.dirname(wav), { recursive: true, force: true }));
    await buildSdkBundle();
    const server = await startTestServer({ quality: { enabled: false } });
    t.teardown(() => server.stop());
    const browser = await launchBrowser([`--use-file-for-fake-audio-capture=${wav}`]);
    t.teardown(() => browser.close());
    const origin = localhostUrl(server.url);
    const roomId = (
      await server.rest<{ id: string }>('POST', '/v1/rooms', { options: { waitingRoom: false } })
    ).body.id;
    const doctor = await browser.openPage(`${origin}/`);
    const patient = await browser.openPage(`${origin}/`);
    await join(
      doctor.page,
      origin,
      await server.token({ room: roomId, participantId: 'doc', role: 'practitioner' }),
    );
    await join(
      patient.page,
      origin,
      await server.token({ room: roomId, participantId: 'pat', role: 'patient' }),
    );
    await patient.page.evaluate(async () => {
      const room = window.stethTest!.room;
      const text = (await room.getConsentTexts()).find((x) => x.purpose === 'teleconsultation');
      await room.giveConsent(text!);
    });
    await waitFor('admission', () =>
      patient.page.evaluate(() => window.stethTest!.room.admissionState === 'admitted'),
    );

    // The patient holds the stethoscope; the doctor's ordinary microphone plays the same input.
    const settings = await patient.page.evaluate(async () => {
      const local = await window.stethTest!.room.publishStethoscope();
      const s = local.track.getSettings();
      return {
        echoCancellation: s.echoCancellation,
        noiseSuppression: s.noiseSuppression,
        autoGainControl: s.autoGainControl,
      };
    });
    t.same(
      settings,
      { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      'the stethoscope track has processing off',
    );
    const micSettings = await doctor.page.evaluate(async () => {
      const local = await window.stethTest!.room.publishMicrophone();
      const s = local.track.getSettings();
      return {
        echoCancellation: s.echoCancellation,
        noiseSuppression: s.noiseSuppression,
        autoGainControl: s.autoGainControl,
      };
    });
    t.same(
      micSettings,
      { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      'the microphone keeps speech processing',
    );

    const remote = (page: Page, source: string) =>
      waitFor(`${source} received`, () =>
        page.evaluate(
          (source) => window.stethTest!.room.remoteTracks.some((r) => r.source === source),
          source,
        ),
      );
    await remote(doctor.page, 'examination-audio');
    await remote(patient.page, 'microphone');
    const reference = await doctor.page.evaluate(() => window.stethTest!.bandEnergy('reference'));
    const stethoscope = await doctor.page.evaluate(() => {
      const track = window.stethTest!.room.remoteTracks.find((r) => r.source === 'examination-audio')!.track;
      return window.stethTest!.bandEnergy(track);
    });
    const microphone = await patient.page.evaluate(() => {
      const track = window.stethTest!.room.remoteTracks.find((r) => r.source === 'microphone')!.track;
      return window.stethTest!.bandEnergy(track);
    });
    // Level: the stethoscope path has no gain control, so its low band is compared as it is.
    const stethDelta = stethoscope.low - reference.low;
    const micDelta = microphone.low - reference.low;
    // Shape: the low band relative to the clicks' band, at the receiver against the sent signal;
    // a broadband gain (the microphone's gain control) cancels out.
    const tilt = (e: BandEnergy) => e.low - e.mid;
    const stethShape = tilt(stethoscope) - tilt(reference);
    const micShape = tilt(microphone) - tilt(reference);
    t.comment(
      `20-200 Hz relative to the sent signal: stethoscope ${stethDelta.toFixed(1)} dB (level), ` +
        `${stethShape.toFixed(1)} dB (shape); microphone path ${micDelta.toFixed(1)} dB (level), ` +
        `${micShape.toFixed(1)} dB (shape)`,
    );
    t.ok(
      Math.abs(stethDelta) <= 3,
      `stethoscope: 20-200 Hz within 3 dB of the sent signal (${stethDelta.toFixed(1)} dB)`,
    );
    t.ok(
      Math.abs(stethShape) <= 3,
      `stethoscope: 20-200 Hz against 500-2000 Hz within 3 dB of the sent signal's (${stethShape.toFixed(1)} dB)`,
    );
    // The microphone path's speech processing and voice Opus take the low band down against the
    // clicks: 4.0 to 4.3 dB in five runs, the stethoscope's 0.3 to 0.5 dB
    // (tests/devices/measurements/stethoscope-shape-2026-12-05.json). "Loses more" is asserted
    // with a 2 dB margin, well above the 0.3 dB spread between runs.
    t.ok(
      micShape < stethShape - 2,
      `the microphone path loses more of 20-200 Hz against 500-2000 Hz (${micShape.toFixed(1)} dB) ` +
        `than the stethoscope (${stethShape.toFixed(1)} dB)`,
    );
    if (process.env.STETHOSCOPE_REPORT)
      fs.writeFileSync(
        process.env.STETHOSCOPE_REPORT,
        JSON.stringify(
          {
            test: 'tests/devices/stethoscopeBrowser.test.ts',
            signal:
              'heart-like bursts 45/90 Hz and 65/130 Hz with an 800/1300 Hz click at each onset, 72 bpm, 48 kHz mono WAV, Chromium fake audio input',
            bandsDb: {
              reference: bands(reference),
              stethoscope: bands(stethoscope),
              microphone: bands(microphone),
            },
            lowBandRelativeToSentDb: { stethoscope: round(stethDelta), microphone: round(micDelta) },
            lowAgainstMidRelativeToSentDb: { stethoscope: round(stethShape), microphone: round(micShape) },
          },
          null,
          2,
        ) + '\n',
      );
  },
);

function bands(e: BandEnergy): { low: number; mid: number; total: number } {
  return { low: round(e.low), mid: round(e.mid), total: round(e.total) };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
