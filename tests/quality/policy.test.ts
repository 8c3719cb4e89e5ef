import t from 'tap';
import { resolveConfig } from '../../src/config/load.js';
import {
  KeyframeLimiter,
  QualityTracker,
  ReceiverPolicy,
  UplinkPolicy,
  allocate,
  buildLadder,
  examinationRung,
  EXAMINATION_VIDEO_CEILING_KBPS,
  networkScore,
  renderCapLayer,
  type LayerRung,
  type QualityThresholds,
  type VideoConsumerView,
} from '../../src/quality/policy.js';
import { RECEIVER_TRACES } from './fixtures/receiverTraces.js';

const defaults: QualityThresholds = resolveConfig({}).quality;
const nominal = buildLadder(3, [], defaults.layerKbps);

t.test('receiver traces replay to the recorded decisions', async (t) => {
  for (const trace of RECEIVER_TRACES) {
    t.test(trace.name, async (t) => {
      const policy = new ReceiverPolicy(defaults);
      const render = new Map<string, { width: number; height: number }>();
      const spatial = new Map<string, number>();
      let changes = 0;
      for (const step of trace.steps) {
        for (const [id, [width, height]] of Object.entries(step.render ?? {}))
          render.set(id, { width, height });
        const video: VideoConsumerView[] = trace.consumers.map((c) => ({
          id: c.id,
          producerId: `${c.id}-producer`,
          main: c.main,
          render: render.get(c.id),
          ladder: nominal,
        }));
        const decision = policy.update({
          at: step.at,
          availableKbps: step.kbps,
          audioStreams: trace.audioStreams,
          video,
        });
        for (const change of decision.layers) {
          spatial.set(change.consumerId, change.rung.spatial);
          if (change.cause !== 'initial') changes++;
        }
        const expect = step.expect;
        if (!expect) continue;
        const at = `at ${step.at} ms`;
        for (const [id, layer] of Object.entries(expect.spatial ?? {}))
          t.equal(spatial.get(id), layer, `${at}: ${id} is set to spatial layer ${layer}`);
        if (expect.mode) t.equal(policy.mode, expect.mode, `${at}: mode is ${expect.mode}`);
        if (expect.event !== undefined)
          t.same(decision.mode ?? null, expect.event, `${at}: mode notification`);
        if (expect.paused) t.same(decision.pause, expect.paused, `${at}: video paused`);
        if (expect.resumed) t.same(decision.resume, expect.resumed, `${at}: video resumed`);
      }
      if (trace.totalLayerChanges !== undefined)
        t.equal(changes, trace.totalLayerChanges, 'layer changes over the whole trace');
    });
  }
});

t.test('a consumer created while only audio fits is not resumed by the policy', async (t) => {
  const policy = new ReceiverPolicy(defaults);
  const view = (id: string): VideoConsumerView => ({
    id,
    producerId: `${id}-p`,
    main: true,
    render: undefined,
    ladder: nominal,
  });
  policy.update({ at: 0, availableKbps: 100, audioStreams: 1, video: [view('a')] });
  const entered = policy.update({ at: 1000, availableKbps: 100, audioStreams: 1, video: [view('a')] });
  t.same(entered.pause, ['a']);
  const later = policy.update({
    at: 2000,
    availableKbps: 100,
    audioStreams: 1,
    video: [view('a'), view('b')],
  });
  t.same(later.resume, [], 'nothing resumes');
  t.same(later.layers, [], 'no layer is set');
  t.equal(policy.mode, 'audio-only');
});

t.test('video that fails again soon after coming back waits twice as long next time', async (t) => {
  const policy = new ReceiverPolicy(defaults);
  const video: VideoConsumerView[] = [
    { id: 'a', producerId: 'p', main: true, render: undefined, ladder: nominal },
  ];
  const backAt: number[] = [];
  // A link that carries video for a moment, then not: 3 s bad, then good until video returns.
  let at = 0;
  let phaseStart = 0;
  for (let round = 0; round < 3; round++) {
    for (; at < phaseStart + 3000; at += 1000)
      policy.update({ at, availableKbps: 150, audioStreams: 1, video });
    for (; ; at += 1000) {
      const decision = policy.update({ at, availableKbps: 800, audioStreams: 1, video });
      if (decision.resume.length > 0) {
        backAt.push(at);
        at += 1000;
        break;
      }
    }
    phaseStart = at;
  }
  t.same(
    backAt.map((when, i) => when - (i === 0 ? 0 : backAt[i - 1]! + 1000)),
    [11_000, 19_000, 35_000],
    '3 s of bad link, then an up dwell of 8 s, 16 s, 32 s',
  );
});

t.test('a ladder uses measured temporal-layer bitrates and falls back to nominal ones', async (t) => {
  const ladder = buildLadder(
    3,
    [
      { spatial: 0, bitrate: 120_000, bitrateByLayer: { '0.0': 60_000, '0.1': 90_000, '0.2': 120_000 } },
      { spatial: 2, bitrate: 900_000, bitrateByLayer: undefined },
    ],
    [150, 500, 1500],
  );
  t.same(
    ladder.map((r: LayerRung) => [r.spatial, r.temporal, r.kbps]),
    [
      [0, 0, 60],
      [0, 1, 90],
      [0, 2, 120],
      [1, undefined, 500],
      [2, undefined, 900],
    ],
  );
  const skewed = buildLadder(2, [{ spatial: 1, bitrate: 50_000, bitrateByLayer: undefined }], [150, 500]);
  t.same(
    skewed.map((r) => r.kbps),
    [150, 150],
    'costs never decrease along the ladder',
  );
});

t.test('render sizes map to the smallest layer that covers the tile', async (t) => {
  const heights = [180, 360, 720];
  t.equal(renderCapLayer(undefined, heights, 3), 2, 'unknown size: no cap');
  t.equal(renderCapLayer({ width: 160, height: 90 }, heights, 3), 0, '160 px thumbnail');
  t.equal(renderCapLayer({ width: 0, height: 0 }, heights, 3), 0, 'hidden tile');
  t.equal(renderCapLayer({ width: 640, height: 360 }, heights, 3), 1, '360 p tile');
  t.equal(renderCapLayer({ width: 1280, height: 400 }, heights, 3), 2, 'wide tile binds on width');
  t.equal(renderCapLayer({ width: 1920, height: 1080 }, heights, 3), 2, 'full screen');
  t.equal(renderCapLayer({ width: 1920, height: 1080 }, heights, 1), 0, 'single-layer producer');
});

t.test('allocation serves main videos before third parties', async (t) => {
  const consumers: VideoConsumerView[] = [
    { id: 'z-third', producerId: 'p1', main: false, render: undefined, ladder: nominal },
    { id: 'a-main', producerId: 'p2', main: true, render: undefined, ladder: nominal },
  ];
  const caps = new Map<string, number>();
  t.same([...allocate(consumers, caps, 200, 1)].sort(), [
    ['a-main', 0],
    ['z-third', -1],
  ]);
  t.same([...allocate(consumers, caps, 1700, 1)].sort(), [
    ['a-main', 2],
    ['z-third', 0],
  ]);
  t.same([...allocate(consumers, new Map([['a-main', 0]]), 1700, 1)].sort(), [
    ['a-main', 0],
    ['z-third', 2],
  ]);
});

t.test('allocation serves the examination video at its best before any camera layer', async (t) => {
  const consumers: VideoConsumerView[] = [
    { id: 'a-camera', producerId: 'p1', main: true, render: undefined, ladder: nominal },
    { id: 'z-exam', producerId: 'p2', main: false, examination: true, render: undefined, ladder: nominal },
  ];
  const top = nominal.length - 1;
  const topKbps = nominal[top]!.kbps;
  t.same(
    [...allocate(consumers, new Map(), topKbps, 1)].sort(),
    [
      ['a-camera', -1],
      ['z-exam', top],
    ],
    'just enough for the examination video at its top: the camera gets nothing',
  );
  const withoutExamination = allocate(
    consumers.map((c) => ({ ...c, examination: false })),
    new Map(),
    topKbps,
    1,
  );
  t.ok((withoutExamination.get('a-camera') ?? -1) >= 0, 'without the profile the camera is served first');
  t.not(withoutExamination.get('z-exam'), top, 'and the examination video falls below its top');
});

t.test("the examination video costs its one encoding's bitrate, not the camera's lowest layer", async (t) => {
  t.same(examinationRung(1_234_000, 4_000_000), { spatial: 0, temporal: undefined, kbps: 1234 }, 'measured');
  t.equal(examinationRung(0, 3_000_000).kbps, 3000, 'not measured yet: the ceiling its sender set');
  t.equal(examinationRung(undefined, undefined).kbps, EXAMINATION_VIDEO_CEILING_KBPS, 'no ceiling: 4 Mbit/s');
  const exam = [examinationRung(1_200_000, 4_000_000)];
  const consumers: VideoConsumerView[] = [
    { id: 'a-camera', producerId: 'p1', main: true, render: undefined, ladder: nominal },
    { id: 'z-exam', producerId: 'p2', main: false, examination: true, render: undefined, ladder: exam },
  ];
  // 1436 kbit/s: the examination video's 1200 leaves room for the camera's 150, not its 500.
  t.same(
    [...allocate(consumers, new Map(), 1436, 1)].sort(),
    [
      ['a-camera', 0],
      ['z-exam', 0],
    ],
    'at its real cost the camera falls to its lowest layer',
  );
  const asLowestLayer = consumers.map((c) => (c.examination ? { ...c, ladder: nominal.slice(0, 1) } : c));
  t.equal(
    allocate(asLowestLayer, new Map(), 1436, 1).get('a-camera'),
    1,
    'counted as a 150 kbit/s layer, the camera would have kept its middle layer over a congested link',
  );
});

t.test(
  'audio-only mode pauses the camera; an examination video pauses only when it does not fit',
  async (t) => {
    const exam = (costGuessed: boolean): VideoConsumerView => ({
      id: 'z-exam',
      producerId: 'p2',
      main: false,
      examination: true,
      costGuessed,
      render: undefined,
      ladder: [examinationRung(1_200_000, 4_000_000)],
    });
    const camera: VideoConsumerView = {
      id: 'a-camera',
      producerId: 'p1',
      main: true,
      render: undefined,
      ladder: nominal,
    };
    const play = (video: VideoConsumerView[]) => {
      const policy = new ReceiverPolicy(defaults);
      const paused = new Set<string>();
      const run = (from: number, to: number, kbps: number) => {
        for (let at = from; at <= to; at += 500) {
          const decision = policy.update({ at, availableKbps: kbps, audioStreams: 1, video });
          for (const id of decision.pause) paused.add(id);
          for (const id of decision.resume) paused.delete(id);
        }
        return [...paused].sort();
      };
      return { policy, run };
    };
    const { policy, run } = play([camera, exam(false)]);
    run(0, 2000, 5000);
    t.equal(policy.rungOf('a-camera'), 2, 'a wide link: camera at its top');
    run(2500, 6000, 1500);
    t.equal(
      policy.rungOf('a-camera'),
      0,
      '1500 kbit/s: camera at its lowest beside the 1200 kbit/s examination',
    );
    t.same(
      run(6500, 10_000, 1300),
      ['a-camera'],
      '1300 kbit/s: audio-only for the camera, the examination flows',
    );
    t.equal(policy.mode, 'audio-only');
    t.same(run(10_500, 16_000, 1000), ['a-camera'], '1000 kbit/s for 6 s: the examination video still flows');
    t.same(
      run(16_500, 19_000, 1000),
      ['a-camera', 'z-exam'],
      'after audioOnlyUpDwellMs without room the examination video pauses too',
    );
    t.ok(policy.pausedExamination('z-exam'));
    t.same(run(19_500, 24_000, 1700), ['a-camera'], '1700 kbit/s: the examination video comes back first');
    t.same(run(24_500, 40_000, 2500), [], '2500 kbit/s: then the camera');
    t.equal(policy.rungOf('a-camera'), 1, 'climbing to its middle layer beside the examination video');

    const guessed = play([camera, exam(true)]);
    t.same(guessed.run(0, 30_000, 1000), ['a-camera'], 'costed by its ceiling only, it is never paused');
  },
);

t.test('the network score is the worst of round-trip time, loss, jitter and bandwidth', async (t) => {
  const needs = { audioKbps: 64, lowestVideoKbps: 150, wantedKbps: 1500 };
  const table: [Parameters<typeof networkScore>[0], number, string][] = [
    [{ rttMs: 40, lossRatio: 0, jitterMs: 5, availableKbps: 3000 }, 5, 'a good fibre link'],
    [{ rttMs: null, lossRatio: null, jitterMs: null, availableKbps: null }, 5, 'nothing measured yet'],
    [{ rttMs: 200, lossRatio: 0, jitterMs: 5, availableKbps: 3000 }, 4, 'some latency'],
    [{ rttMs: 40, lossRatio: 0.05, jitterMs: 5, availableKbps: 3000 }, 3, '5 % loss'],
    [{ rttMs: 40, lossRatio: 0, jitterMs: 5, availableKbps: 900 }, 4, 'bandwidth for the middle layer'],
    [{ rttMs: 40, lossRatio: 0, jitterMs: 5, availableKbps: 300 }, 3, 'bandwidth for the lowest layer'],
    [{ rttMs: 40, lossRatio: 0, jitterMs: 5, availableKbps: 120 }, 2, 'bandwidth for audio only'],
    [{ rttMs: 40, lossRatio: 0, jitterMs: 5, availableKbps: 40 }, 1, 'not even audio'],
    [{ rttMs: 900, lossRatio: 0.15, jitterMs: 130, availableKbps: 120 }, 1, 'a failing 4G cell'],
    [{ rttMs: 2000, lossRatio: 0.4, jitterMs: 300, availableKbps: 10 }, 0, 'unusable'],
  ];
  for (const [measures, score, what] of table) t.equal(networkScore(measures, needs, defaults), score, what);
  t.equal(
    networkScore(
      { rttMs: 40, lossRatio: 0, jitterMs: 5, availableKbps: 100 },
      { audioKbps: 64, lowestVideoKbps: 0, wantedKbps: 0 },
      defaults,
    ),
    5,
    'audio alone on a link that carries it',
  );
});

t.test('a sustained poor score is one incident and suggests the phone until it recovers', async (t) => {
  const tracker = new QualityTracker(defaults);
  const incidents: number[] = [];
  const suggest: boolean[] = [];
  // 0-4 s good, 5-24 s poor, then good again.
  for (let at = 0; at <= 60_000; at += 1000) {
    const score = at >= 5000 && at < 25_000 ? 1 : 4;
    const verdict = tracker.update(at, score);
    if (verdict.incident) incidents.push(at);
    suggest.push(verdict.suggestPhoneFallback);
  }
  t.same(incidents, [15_000], 'one incident, poorForMs after the drop');
  t.equal(suggest[14], false, 'no suggestion before poorForMs');
  t.equal(suggest[15], true, 'suggested from then on');
  t.equal(suggest[39], true, 'still suggested 14 s after recovery');
  t.equal(suggest[40], false, 'cleared recoveredForMs after recovery');
  const brief = new QualityTracker(defaults);
  let any = false;
  for (let at = 0; at < 30_000; at += 1000) any ||= brief.update(at, at % 8000 < 7000 ? 0 : 5).incident;
  t.equal(any, false, 'short bad spells separated by good samples are no incident');
});

t.test('a weak uplink is advised to drop layers one at a time and to restore them when clean', async (t) => {
  const uplink = new UplinkPolicy(defaults);
  const advice: [number, number][] = [];
  const loss = (at: number) => (at < 5000 ? 0 : at < 9000 ? 0.15 : 0);
  for (let at = 0; at <= 40_000; at += 1000) {
    const next = uplink.update({ at, lossRatio: loss(at), jitterMs: 10, spatialLayers: 3 });
    if (next !== undefined) advice.push([at, next]);
  }
  t.same(advice, [
    [6000, 1],
    [7000, 0],
    [17000, 1],
    [25000, 2],
  ]);
  const jittery = new UplinkPolicy(defaults);
  t.equal(jittery.update({ at: 0, lossRatio: 0, jitterMs: 150, spatialLayers: 3 }), undefined);
  t.equal(
    jittery.update({ at: 1000, lossRatio: 0, jitterMs: 150, spatialLayers: 3 }),
    1,
    'jitter alone counts',
  );
});

t.test('keyframe requests are limited per sender stream', async (t) => {
  const limiter = new KeyframeLimiter(1000, 2);
  t.equal(limiter.allow('p1', 0), true);
  t.equal(limiter.allow('p1', 500), false, 'a second receiver within the interval');
  t.equal(limiter.allow('p2', 500), true, 'another stream');
  t.equal(limiter.allow('p1', 1000), true, 'after the interval');
  t.equal(limiter.allow('p3', 1000), true, 'the table stays bounded');
  t.equal(limiter.allow('p2', 1200), true, 'the oldest entry was evicted');
});
