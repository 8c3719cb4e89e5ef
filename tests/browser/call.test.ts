import t from 'tap';
import type * as Sdk from '../../src/sdk/index.js';
import type { DataSender } from '../../src/sdk/index.js';
import { startTestServer, type TestServer } from '../support/server.js';
import {
  chromiumAvailable,
  launchBrowser,
  localhostUrl,
  type TestBrowser,
  type TestPage,
} from '../support/browser.js';
import {
  buildSdkBundle,
  consentInPage,
  framesDecoded,
  joinInPage,
  pageRecord,
  publishCameraAndMicrophone,
  waitFor,
} from './harness.js';

declare global {
  interface Window {
    oximeter?: DataSender;
    flood?: DataSender;
  }
}

interface Consultation {
  roomId: string;
  tokens: { practitioner: string; patient: string };
}

async function createConsultation(server: TestServer): Promise<Consultation> {
  const res = await fetch(`${server.url}/demo/consultations`, { method: 'POST' });
  if (res.status !== 201) throw new Error(`demo endpoint answered ${res.status}`);
  return (await res.json()) as Consultation;
}

function details(...pages: TestPage[]): string {
  return pages
    .map((p, i) => `page ${i}: ${p.problems.slice(0, 10).join(' | ') || 'no console errors'}`)
    .join('\n');
}

const skip = (await chromiumAvailable()) ? false : 'chromium is not installed';

/** Waits until the page decodes more video frames than `after` (fails with the pages' console errors). */
async function decodesMoreThan(
  page: TestPage,
  after: number,
  what: string,
  ...all: TestPage[]
): Promise<number> {
  return waitFor(what, async () => {
    const frames = await framesDecoded(page.page);
    return frames > after ? frames : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${details(...all)}`);
  });
}

t.test('a consultation through the SDK in Chromium', { skip }, async (t) => {
  await buildSdkBundle();
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const browser: TestBrowser = await launchBrowser();
  t.teardown(() => browser.close());
  const origin = localhostUrl(server.url);
  const consultation = await createConsultation(server);

  const practitioner = await browser.openPage(`${origin}/`);
  const patient = await browser.openPage(`${origin}/`);
  const sides = [
    ['patient', patient],
    ['practitioner', practitioner],
  ] as const;
  let patientId = '';

  await t.test('the waiting patient receives nothing before admission', async (t) => {
    const joinedPractitioner = await joinInPage(practitioner.page, origin, consultation.tokens.practitioner);
    t.equal(joinedPractitioner.state, 'admitted', 'the practitioner is admitted on joining');
    t.same(
      await publishCameraAndMicrophone(practitioner.page),
      ['published', 'published'],
      'the practitioner publishes at once',
    );
    const joinedPatient = await joinInPage(patient.page, origin, consultation.tokens.patient);
    patientId = joinedPatient.selfId;
    t.equal(joinedPatient.state, 'waiting', 'the patient starts in the waiting room');
    t.same(
      await publishCameraAndMicrophone(patient.page),
      ['queued', 'queued'],
      'publication waits for admission',
    );

    await waitFor('the practitioner to see the patient waiting', async () =>
      (await pageRecord(practitioner.page)).events.includes(`participantJoined:${patientId}:waiting`),
    );
    // Give wrongly-routed media every chance to arrive before checking that none did.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    t.same((await pageRecord(patient.page)).tracks, [], 'the waiting patient received no track');
    const room = server.server.rooms.get(consultation.roomId);
    const waiting = room?.participants.get(patientId);
    if (!waiting || !room) throw new Error('the waiting patient is not on the server');
    // Connect ahead: its room transports exist and finished ICE and DTLS, and carry nothing.
    await waitFor('the waiting patient to connect its transports ahead', () =>
      Promise.resolve(
        waiting.transports.size === 2 &&
          [...waiting.transports.values()].every((transport) => transport.dtlsState === 'connected'),
      ),
    );
    t.pass("the SDK connected the waiting patient's two room transports ahead (ICE and DTLS)");
    t.equal(waiting.consumers.size, 0, 'no consumer on them');
    t.equal(waiting.producers.size, 0, 'no producer on them');
    t.same(
      [...waiting.dataConsumers.values()].map((c) => (c.appData as { participantId: string }).participantId),
      [patientId],
      'the only thing it receives is its own warm-up channel',
    );
    t.equal(
      room.participants.get('practitioner-1')?.dataConsumers.size,
      0,
      'the practitioner is offered nothing of the waiting patient',
    );
    t.same(
      (await pageRecord(practitioner.page)).tracks,
      [],
      'the practitioner received nothing from the patient',
    );
  });

  await t.test(
    "the waiting patient's pre-call check decodes its own video looped through the server, and nothing else",
    async (t) => {
      const room = server.server.rooms.get(consultation.roomId);
      const patientOnServer = room?.participants.get(patientId);
      const doctorOnServer = room?.participants.get('practitioner-1');
      if (!patientOnServer || !doctorOnServer) throw new Error('participants not found on the server');
      await patient.page.evaluate(() => {
        const tc = window.tc;
        if (!tc) throw new Error('not joined');
        tc.precheck = tc.room.runPrecheck({
          durationMs: 4_000,
          onTrack: (track) => {
            tc.record.events.push(`precheckTrack:${track.kind}:${track.participantId}`);
            if (track.kind !== 'video') return;
            const video = document.createElement('video');
            video.id = 'precheck-video';
            video.muted = true;
            video.autoplay = true;
            video.srcObject = new MediaStream([track.track]);
            document.body.append(video);
          },
        });
      });
      // While it runs: what the server forwards to the patient is its own media, and only that.
      await waitFor("the server to loop the patient's audio and video back", () =>
        Promise.resolve(patientOnServer.consumers.size >= 2 || undefined),
      );
      const ownProducers = new Set(patientOnServer.producers.keys());
      const forwarded = [...patientOnServer.consumers.values()].map((c) => c.producerId);
      t.ok(
        forwarded.every((id) => ownProducers.has(id)),
        'every consumer of the waiting patient is of its own pre-call media',
      );
      t.notOk(
        forwarded.some((id) => doctorOnServer.producers.has(id)),
        "nothing of the practitioner's media is forwarded to it",
      );
      t.notOk(
        [...doctorOnServer.consumers.values()].some((c) => ownProducers.has(c.producerId)),
        "the practitioner receives none of the patient's pre-call media",
      );
      const report = await patient.page.evaluate(async () => {
        const result = await window.tc?.precheck;
        if (!result) throw new Error('no pre-call check');
        return { ...result, tracks: result.tracks.map((track) => `${track.kind}:${track.participantId}`) };
      });
      t.ok(report.framesDecoded > 0, `the looped-back camera was decoded (${report.framesDecoded} frames)`);
      t.ok(report.audioPacketsReceived > 0, 'the looped-back microphone arrived');
      t.ok(report.camera && report.microphone, 'camera and microphone pass');
      t.ok(report.completed && report.reported, 'the check completed and was reported');
      t.same(
        report.tracks.sort(),
        [`audio:${patientId}`, `video:${patientId}`],
        'the looped-back tracks are its own',
      );
      t.ok(report.rttMs >= 0 && report.rttMs < 60_000, `a round trip was measured (${report.rttMs} ms)`);
      t.ok(report.lossRatio >= 0 && report.lossRatio <= 1, `a loss ratio was measured (${report.lossRatio})`);
      t.ok(report.uploadKbps > 0, `an upload estimate was measured (${report.uploadKbps} kbit/s)`);
      const record = await pageRecord(patient.page);
      t.same(record.tracks, [], 'no trackAdded reached the waiting patient');
      t.ok(record.events.includes(`precheckTrack:video:${patientId}`), 'onTrack got the looped-back video');
      t.same(record.errors, [], 'the check raised no SDK error');
      await waitFor('the practitioner to see the pre-call result in the waiting list', async () =>
        (await pageRecord(practitioner.page)).waitingList.includes(`${patientId}:none:precheck`),
      );
      t.pass("the practitioner's waiting list shows the result");
      t.equal(
        await patient.page.evaluate(() => window.tc?.room.localTracks.map((l) => l.state).join(',')),
        'queued,queued',
        'the publications queued before the check are still queued',
      );
    },
  );

  await t.test("a practitioner's hold message reaches the waiting patient", async (t) => {
    const message = 'Je termine une consultation, encore 5 minutes.';
    await practitioner.page.evaluate(({ id, message }) => window.tc?.room.hold(id, message), {
      id: patientId,
      message,
    });
    await waitFor('the patient to receive the message', async () =>
      (await pageRecord(patient.page)).admissionMessages.includes(message),
    );
    t.equal(
      await patient.page.evaluate(() => window.tc?.room.heldMessage),
      message,
      'room.heldMessage has it',
    );
    t.equal(await patient.page.evaluate(() => window.tc?.room.admissionState), 'waiting', 'still waiting');
  });

  await t.test("admission needs the patient's consent, given through the SDK", async (t) => {
    const refused = await practitioner.page.evaluate(
      (id) =>
        window.tc?.room.admit(id).then(
          () => 'admitted',
          (err: { code?: string }) => err.code ?? 'no code',
        ),
      patientId,
    );
    t.equal(refused, 'CONSENT_REQUIRED', 'admitting before consent is refused');
    const version = await consentInPage(patient.page);
    t.ok(version.length > 0, `the patient accepted consent text version ${version}`);
    await waitFor('the patient to be told it consented', async () =>
      (await pageRecord(patient.page)).admission.includes('consented'),
    );
    await waitFor('the practitioner to see the consent in the waiting list', async () =>
      (await pageRecord(practitioner.page)).waitingList.includes(`${patientId}:teleconsultation:precheck`),
    );
    // Receive first: when the patient's first producer reaches the server, its consumers of the
    // practitioner's media are already resumed (the SDK set them up before publishing). The
    // patient's browser takes 300 ms longer to apply each offer it receives (the step that sets up a
    // received track), so that the SDK's ordering, not the timing, puts the resumes first.
    await patient.page.evaluate(() => {
      type Apply = (this: RTCPeerConnection, description: RTCSessionDescriptionInit) => Promise<void>;
      const proto = RTCPeerConnection.prototype as unknown as { setRemoteDescription: Apply };
      const apply = proto.setRemoteDescription;
      proto.setRemoteDescription = async function (description) {
        if (description.type === 'offer') await new Promise((resolve) => setTimeout(resolve, 300));
        return apply.call(this, description);
      };
      (window as unknown as { restoreOffers?: () => void }).restoreOffers = () => {
        proto.setRemoteDescription = apply;
      };
    });
    const room = server.server.rooms.get(consultation.roomId);
    if (!room) throw new Error('no room on the server');
    const atFirstProducer = new Promise<string[]>((resolve) => {
      const onMedia = (_producer: unknown, owner: { id: string }) => {
        if (owner.id !== patientId) return;
        room.events.off('mediaAdded', onMedia);
        const received = [...(room.participants.get(patientId)?.consumers.values() ?? [])].filter(
          (c) => (c.appData as { participantId?: string }).participantId !== patientId,
        );
        resolve(received.map((c) => `${c.kind}:${c.paused ? 'paused' : 'resumed'}`).sort());
      };
      room.events.on('mediaAdded', onMedia);
    });
    await practitioner.page.evaluate((id) => window.tc?.room.admit(id), patientId);
    await waitFor('the patient to learn it is admitted', async () =>
      (await pageRecord(patient.page)).admission.includes('admitted'),
    );
    t.same(
      await atFirstProducer,
      ['audio:resumed', 'video:resumed'],
      "the patient resumed the practitioner's camera and microphone before its first producer",
    );
    await patient.page.evaluate(() =>
      (window as unknown as { restoreOffers?: () => void }).restoreOffers?.(),
    );
    t.equal(
      await patient.page.evaluate(() => window.tc?.room.heldMessage ?? 'none'),
      'none',
      'the hold message is cleared',
    );
    await waitFor(
      'the queued publications to go out',
      async () =>
        (await patient.page.evaluate(() => window.tc?.room.localTracks.map((l) => l.state).join(','))) ===
        'published,published',
    );
    t.pass('the camera and microphone queued before the pre-call check are published');
    const patientOnServer = server.server.rooms.get(consultation.roomId)?.participants.get(patientId);
    t.equal(patientOnServer?.precheckTransportIds.size, 0, 'the server closed the pre-call transports');
    t.equal(patientOnServer?.dataProducers.size ?? 0, 0, 'and the warm-up channel');
    t.equal(patientOnServer?.transports.size, 2, 'the transports connected ahead carry the consultation');
  });

  await t.test("once admitted, each side decodes the other side's video", async (t) => {
    for (const [name, side] of sides) {
      const tracks = await waitFor(`${name} to receive audio and video`, async () => {
        const { tracks } = await pageRecord(side.page);
        return tracks.length >= 2 ? tracks : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n${details(practitioner, patient)}`);
      });
      t.same(
        tracks.map((track) => track.kind).sort(),
        ['audio', 'video'],
        `${name} receives audio and video`,
      );
      const frames = await decodesMoreThan(side, 0, `${name} to decode video`, practitioner, patient);
      t.ok(frames > 0, `${name} decoded ${frames} video frames from the other side`);
    }
  });

  await t.test(
    'muting, unsubscribing, resubscribing and choosing a layer reach the other side',
    async (t) => {
      await patient.page.evaluate(() => window.tc?.room.mute('microphone'));
      await waitFor('the practitioner to see the microphone muted', async () =>
        (await pageRecord(practitioner.page)).events.includes('trackMuted:audio'),
      );
      await patient.page.evaluate(() => window.tc?.room.unmute('microphone'));
      await waitFor('the practitioner to see the microphone back', async () =>
        (await pageRecord(practitioner.page)).events.includes('trackUnmuted:audio'),
      );
      t.pass('mute and unmute reach the practitioner as trackMuted / trackUnmuted');

      const resubscribed = await practitioner.page.evaluate(async () => {
        const room = window.tc?.room;
        const video = room?.remoteTracks.find((track) => track.kind === 'video');
        if (!room || !video) throw new Error('no remote video');
        await room.unsubscribe(video);
        const afterUnsubscribe = room.remoteTracks.map((track) => track.kind);
        const again = await room.subscribe(video.producerId);
        return {
          afterUnsubscribe,
          sameProducer: again.producerId === video.producerId,
          newConsumer: again.id !== video.id,
          live: again.track.readyState === 'live',
        };
      });
      t.same(resubscribed.afterUnsubscribe, ['audio'], 'after unsubscribe only the audio remains');
      t.ok(resubscribed.sameProducer && resubscribed.newConsumer, 'subscribe brings the same producer back');
      t.ok(resubscribed.live, 'with a live track');
      const before = await framesDecoded(practitioner.page);
      await decodesMoreThan(
        practitioner,
        before,
        'the practitioner to decode the resubscribed video',
        patient,
      );

      // The server's quality controller owns layer selection (it re-applies its own choice over a
      // bare setPreferredLayers); a thumbnail-sized render size is what brings the lowest layer.
      await practitioner.page.evaluate(async () => {
        const room = window.tc?.room;
        const video = room?.remoteTracks.find((track) => track.kind === 'video');
        if (!room || !video) throw new Error('no remote video');
        await room.setPreferredLayers(video, 0);
        await room.setRenderSize(video, 160, 90);
      });
      await waitFor('the practitioner to receive the lowest layer', async () =>
        (await pageRecord(practitioner.page)).events.includes('layersChanged:0'),
      ).catch(async (err: Error) => {
        const events = (await pageRecord(practitioner.page)).events.filter((e) =>
          /^(layers|mediaMode)/.test(e),
        );
        throw new Error(`${err.message}; practitioner events: ${events.join(' ')}`);
      });
      t.pass('a 160x90 render size switches the received video to the lowest simulcast layer');
    },
  );

  await t.test("a patient's data channel reaches the practitioner", async (t) => {
    await patient.page.evaluate(async () => {
      const room = window.tc?.room;
      if (!room) throw new Error('not joined');
      window.oximeter = await room.publishData('oximeter');
    });
    const expected = `dataMessage:${patientId}:oximeter:{"spo2":97}`;
    // The channel opens asynchronously on both sides: send readings until one lands.
    await waitFor(
      'the practitioner to receive a reading',
      async () => {
        await patient.page.evaluate(() => window.oximeter?.send(JSON.stringify({ spo2: 97 })));
        return (await pageRecord(practitioner.page)).events.includes(expected);
      },
      60_000,
      500,
    );
    t.pass('the reading arrived as a dataMessage event');
    t.equal(
      await patient.page.evaluate(() => window.oximeter?.send('x')),
      true,
      'send() reports true once the channel is open',
    );
  });

  await t.test('a flooding data channel is closed by the server and the SDK says why', async (t) => {
    await patient.page.evaluate(async () => {
      const room = window.tc?.room;
      if (!room) throw new Error('not joined');
      const flood = await room.publishData('flood');
      // Far above the server's limit for an application channel (50 a second in bursts of 100),
      // until the SDK reports the channel closed or 10 s (the server closes it after 3 s).
      const until = performance.now() + 10_000;
      while (performance.now() < until && !window.tc!.record.errors.some((e) => e.startsWith('DATA_RATE'))) {
        for (let i = 0; i < 50; i++) flood.send('x'.repeat(100));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      window.flood = flood;
    });
    const { errors } = await pageRecord(patient.page);
    t.ok(
      errors.includes('DATA_RATE_EXCEEDED: flood'),
      `the SDK emitted the code and the label (${errors.join('; ')})`,
    );
    t.equal(
      await patient.page.evaluate(() => window.flood?.send('more')),
      false,
      'the closed channel sends nothing more',
    );
    t.equal(
      await patient.page.evaluate(() => window.oximeter?.send(JSON.stringify({ spo2: 98 }))),
      true,
      'the other data channel stays open',
    );
  });

  await t.test('after a signalling drop the session resumes and video keeps flowing', async (t) => {
    await patient.page.evaluate(() => window.tc?.room.simulateConnectionDrop());
    await waitFor('the patient to reconnect', async () => {
      const { connection } = await pageRecord(patient.page);
      return connection.join(',').endsWith('reconnecting,connected');
    });
    t.pass('the patient went through reconnecting back to connected');
    for (const [name, side] of sides) {
      const before = await framesDecoded(side.page);
      const after = await decodesMoreThan(side, before, `${name} to keep decoding`, practitioner, patient);
      t.ok(after > before, `${name} keeps decoding (${before} -> ${after} frames)`);
    }
    t.equal(
      (await pageRecord(patient.page)).tracks.length,
      2,
      'the patient kept its two tracks (no duplicate subscription)',
    );
  });

  await t.test('when the media worker dies, the SDK rebuilds its media and video comes back', async (t) => {
    const pid = server.server.rooms.get(consultation.roomId)?.workerPid;
    t.type(pid, 'number', 'the room runs on a worker');
    process.kill(pid as number, 'SIGKILL');
    for (const [name, side] of sides) {
      await waitFor(`${name} to be told of the media reset`, async () =>
        (await pageRecord(side.page)).events.includes('mediaReset'),
      );
      const frames = await decodesMoreThan(side, 0, `${name} to decode video again`, practitioner, patient);
      t.ok(frames > 0, `${name} decodes video again on new transports (${frames} frames)`);
    }
    const reading = `dataMessage:${patientId}:oximeter:{"spo2":98}`;
    await waitFor(
      'a reading over the data channel reopened after the reset',
      async () => {
        await patient.page.evaluate(() => window.oximeter?.send(JSON.stringify({ spo2: 98 })));
        return (await pageRecord(practitioner.page)).events.includes(reading);
      },
      60_000,
      500,
    );
    t.pass('the SDK reopened the data channel on the new transports');
  });

  await t.test(
    "an assistant joins with an access code, is admitted after the patient's third-party consent, and its resume reconciles the tracks that changed while it was away",
    async (t) => {
      const invalid = await browser.openPage(`${origin}/`);
      t.teardown(() => invalid.page.close());
      const badFormat = await invalid.page.evaluate(async (url) => {
        const bundle = '/sdk/teleconsult-sdk.js';
        const sdk = (await import(bundle)) as typeof Sdk;
        return sdk.connect(url, { accessCode: '12ab' }, { handlerName: 'Chrome111' }).then(
          () => 'joined',
          (err: { code: string; message: string }) => `${err.code}: ${err.message}`,
        );
      }, origin);
      t.match(
        badFormat,
        /^ACCESS_CODE_INVALID: Le code d'accès/,
        'a malformed code is refused by the SDK, in French',
      );

      const invitation = await server.rest<{ accessCode: string; participantId: string }>(
        'POST',
        `/v1/rooms/${consultation.roomId}/invitations`,
        { role: 'assistant', displayName: 'Infirmière' },
      );
      t.equal(invitation.status, 201, 'the platform creates an invitation');
      const assistant = await browser.openPage(`${origin}/`);
      t.teardown(() => assistant.page.close());
      const spaced = invitation.body.accessCode.replace(/^(\d{4})/, '$1 ');
      // A slow first reconnection, so that the room can change while its signalling is down.
      const joined = await joinInPage(
        assistant.page,
        origin,
        { accessCode: spaced },
        { reconnect: { initialDelayMs: 6_000, maxDelayMs: 6_000 } },
      );
      t.equal(joined.selfId, invitation.body.participantId, 'the code (typed with a space) joins');
      t.equal(joined.state, 'waiting', 'the assistant waits');
      await waitFor('the patient to be asked for its consent', async () =>
        (await pageRecord(patient.page)).consentRequests.includes(`third-party:${joined.selfId}`),
      );
      const given = await patient.page.evaluate(async (id) => {
        const room = window.tc?.room;
        if (!room) throw new Error('not joined');
        const text = (await room.getConsentTexts()).find((x) => x.purpose === 'third-party');
        if (!text) throw new Error('no third-party text');
        await room.giveConsent(text, { coversParticipantId: id });
        return text.purpose;
      }, joined.selfId);
      t.equal(given, 'third-party', "the patient gives its consent to the assistant's presence");
      await practitioner.page.evaluate((id) => window.tc?.room.admit(id), joined.selfId);
      await waitFor('the assistant to be admitted', async () =>
        (await pageRecord(assistant.page)).admission.includes('admitted'),
      );
      t.pass('the practitioner admitted the assistant');
      const received = () =>
        assistant.page.evaluate(() =>
          (window.tc?.room.remoteTracks ?? [])
            .filter((track) => track.track.readyState === 'live')
            .map((track) => `${track.participantId}:${track.source}`)
            .sort(),
        );
      await waitFor('the assistant to receive both sides', async () => (await received()).length === 4);

      // Its signalling drops; meanwhile the practitioner shares a screen and the patient stops its
      // microphone. The notifications are lost with the connection; the resume lists the consumers.
      await assistant.page.evaluate(() => window.tc?.room.simulateConnectionDrop());
      await practitioner.page.evaluate(async () => {
        const canvas = document.createElement('canvas');
        canvas.width = 320;
        canvas.height = 180;
        const context = canvas.getContext('2d');
        setInterval(() => {
          if (!context) return;
          context.fillStyle = `hsl(${(Date.now() / 10) % 360}, 80%, 50%)`;
          context.fillRect(0, 0, 320, 180);
        }, 50);
        const [track] = canvas.captureStream(15).getVideoTracks();
        if (!track || !window.tc) throw new Error('no canvas track');
        await window.tc.room.publishTrack(track, 'screen');
      });
      await patient.page.evaluate(() => window.tc?.room.unpublish('microphone'));
      const room = server.server.rooms.get(consultation.roomId);
      const assistantOnServer = room?.participants.get(joined.selfId);
      const screenProducer = [...(room?.participants.get('practitioner-1')?.producers.values() ?? [])].find(
        (p) => (p.appData as { source?: string }).source === 'screen',
      );
      if (!assistantOnServer || !screenProducer) throw new Error('no screen producer on the server');
      const screenConsumer = await waitFor('the server to create the screen consumer', () =>
        Promise.resolve(
          [...assistantOnServer.consumers.values()].find((c) => c.producerId === screenProducer.id),
        ),
      );
      t.equal(assistantOnServer.link, undefined, 'it was created while the assistant was disconnected');
      t.equal(
        (await pageRecord(assistant.page)).connection.at(-1),
        'reconnecting',
        'the assistant has not reconnected yet',
      );
      await waitFor('the assistant to resume', async () =>
        (await pageRecord(assistant.page)).connection.join(',').endsWith('reconnecting,connected'),
      );
      await waitFor(
        'the received tracks to match the room again',
        async () =>
          (await received()).join(',') ===
          ['patient-1:camera', 'practitioner-1:camera', 'practitioner-1:microphone', 'practitioner-1:screen']
            .sort()
            .join(','),
      );
      t.pass("after the resume the screen is received and the patient's microphone is gone");
      await waitFor('the screen consumer to be resumed by the SDK', () =>
        Promise.resolve(!screenConsumer.paused || undefined),
      );
      t.pass('the SDK resumed the consumer it learnt of from the resume');
      await assistant.page.evaluate(() => window.tc?.room.leave());
      await waitFor(
        'the assistant to be gone',
        async () =>
          (await practitioner.page.evaluate((id) => !window.tc?.room.participants.has(id), joined.selfId)) ||
          undefined,
      );
    },
  );

  await t.test('no side saw an unexpected SDK error, and leaving is seen by the other side', async (t) => {
    t.same(
      (await pageRecord(patient.page)).errors,
      ['DATA_RATE_EXCEEDED: flood'],
      'the patient saw no SDK error but the flood it was told of',
    );
    t.same((await pageRecord(practitioner.page)).errors, [], 'the practitioner saw no SDK error');
    await patient.page.evaluate(() => window.tc?.room.leave());
    await waitFor('the practitioner to see the patient leave', async () => {
      const left = await practitioner.page.evaluate(() => window.tc?.room.participants.size === 0);
      return left || undefined;
    });
    t.pass('the patient left and the practitioner saw it');
  });
});
