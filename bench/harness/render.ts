import type { Percentiles } from '../peer/index.js';
import type { BenchReport, StepReport } from './report.js';

const f1 = (n: number): string => n.toFixed(1);
const f2 = (n: number): string => n.toFixed(2);
const pct = (ratio: number): string => `${(ratio * 100).toFixed(2)} %`;

/** Human summary written beside the JSON report. */
export function renderMarkdown(r: BenchReport): string {
  const lines = [
    `# Benchmark: ${r.scenario} on ${r.target}`,
    '',
    `${r.sessions} sessions (${r.participantsPerSession} participants each${r.media === 'audio' ? ', audio only' : ''}) measured for ${f1(r.durationS)} s on ` +
      `${r.workers} mediasoup worker(s); ${r.host.cpus} CPUs, Node ${r.host.node}; load average ` +
      `${r.host.loadAverage.join(' / ')}; started ${r.startedAt}.`,
    '',
    '| measure | value |',
    '| --- | --- |',
    `| loss ratio | ${pct(r.lossRatio)} (${r.packets.lost} of ${r.packets.expected} expected packets) |`,
    `| delay added p50 / p95 / p99 | ${f2(r.delayMs.p50)} / ${f2(r.delayMs.p95)} / ${f2(r.delayMs.p99)} ms |`,
    `| join to first RTP p50 / p95 / p99 | ${f1(r.joinMs.p50)} / ${f1(r.joinMs.p95)} / ${f1(r.joinMs.p99)} ms |`,
    `| join: joined (answer; patient: consent + admission) p95 | ${f1(r.joinPhasesMs.joined.p95)} ms |`,
    `| join: signalling done p95 | ${f1(r.joinPhasesMs.signalling.p95)} ms |`,
    `| join: transports connected p95 | ${f1(r.joinPhasesMs.connected.p95)} ms |`,
    `| join: first video p95 | ${f1(r.joinPhasesMs.firstVideo.p95)} ms |`,
    `| CPU server / workers | ${f2(r.cpuS.server)} / ${f2(r.cpuS.workers)} s (${f1(r.cpuCores.server * 100)} % / ${f1(r.cpuCores.workers * 100)} % of a core) |`,
    `| CPU per session | ${f2(r.cpuCoresPerSession * 100)} % of a core |`,
    `| CPU per forwarded megabit | ${f2(r.cpuMsPerForwardedMbit)} ms |`,
    `| forwarded | ${f1(r.forwardedMbps)} Mbit/s |`,
    `| resident memory server / workers | ${f1(r.rssMiB.server)} / ${f1(r.rssMiB.workers)} MiB |`,
    `| packets sent / received | ${r.packets.sent} / ${r.packets.received} |`,
    `| bytes sent / received | ${r.bytes.sent} / ${r.bytes.received} |`,
    `| joined / failed sessions | ${r.joined} / ${r.joinFailures} |`,
    `| video at the top simulcast layer | ${pct(r.videoTopLayerShare)} of received video streams |`,
    `| UDP receive / send buffer errors (host) | ${r.udpErrors.rcvbufErrors} / ${r.udpErrors.sndbufErrors} |`,
    `| datagrams dropped at server / generator sockets | ${r.socketDrops.server} / ${r.socketDrops.generator} |`,
    `| load generator CPU (not counted) | ${f2(r.loadGenerator.cpuS)} s, late ticks ${pct(r.loadGenerator.lateTickRatio)} |`,
    ...(r.cpuBudget
      ? [
          `| CPU budget of the target / held back by it | ${f2(r.cpuBudget.cores)} cores / ${f2(r.cpuBudget.throttledS)} s |`,
        ]
      : []),
  ];
  if (r.ramp) {
    lines.push(
      '',
      `## Ramp (stop at loss > ${pct(r.ramp.thresholds.maxLossRatio)} or delay p99 > ${r.ramp.thresholds.maxDelayP99Ms} ms)`,
      '',
      `Last good level: **${r.ramp.lastGoodSessions} sessions**. Stopped: ${r.ramp.stopReason}.`,
      '',
      '| sessions | loss | delay p99 ms | join p95 ms | CPU cores (server + workers) | CPU/session | Mbit/s | ok |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      ...r.ramp.steps.map(
        (s) =>
          `| ${s.sessions} | ${pct(s.lossRatio)} | ${f2(s.delayMs.p99)} | ${f1(s.joinMs.p95)} | ${f2(s.cpuCores.total)} | ` +
          `${f2(s.cpuCoresPerSession * 100)} % | ${f1(s.forwardedMbps)} | ${s.passed ? 'yes' : 'no'} |`,
      ),
    );
  }
  if (r.errors.length > 0) lines.push('', '## Errors', '', ...r.errors.map((e) => `- ${e}`));
  return lines.join('\n') + '\n';
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/** A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least the value. */
function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (m * power >= value) return m * power;
  return 10 * power;
}

interface Bar {
  label: string;
  value: number;
}

function panel(x: number, y: number, w: number, h: number, title: string, unit: string, bars: Bar[]): string {
  const max = niceMax(Math.max(...bars.map((b) => b.value)));
  const plotTop = y + 30;
  const plotH = h - 60;
  const slot = w / bars.length;
  const parts = [
    `<text x="${x + w / 2}" y="${y + 16}" text-anchor="middle" font-weight="bold">${escapeXml(title)}</text>`,
    `<line x1="${x}" y1="${plotTop + plotH}" x2="${x + w}" y2="${plotTop + plotH}" stroke="#444"/>`,
    `<text x="${x}" y="${plotTop - 4}" font-size="10" fill="#666">${max} ${escapeXml(unit)}</text>`,
    `<line x1="${x}" y1="${plotTop}" x2="${x + w}" y2="${plotTop}" stroke="#ddd"/>`,
  ];
  bars.forEach((bar, i) => {
    const bh = (Math.max(0, bar.value) / max) * plotH;
    const bx = x + i * slot + slot * 0.2;
    const bw = slot * 0.6;
    parts.push(
      `<rect x="${bx.toFixed(1)}" y="${(plotTop + plotH - bh).toFixed(1)}" width="${bw.toFixed(1)}" height="${bh.toFixed(1)}" fill="#3b7dd8"/>`,
      `<text x="${(bx + bw / 2).toFixed(1)}" y="${(plotTop + plotH - bh - 4).toFixed(1)}" text-anchor="middle" font-size="11">${bar.value.toFixed(bar.value < 10 ? 2 : 1)}</text>`,
      `<text x="${(bx + bw / 2).toFixed(1)}" y="${plotTop + plotH + 16}" text-anchor="middle" font-size="11">${escapeXml(bar.label)}</text>`,
    );
  });
  return parts.join('\n');
}

function svgDocument(width: number, height: number, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`
  );
}

/** Single run: four bar panels (CPU, delay, join, loss), each on its own scale. */
export function renderBarChart(r: BenchReport): string {
  const w = 220;
  const h = 260;
  const title = `${r.scenario} on ${r.target}: ${r.sessions} sessions, ${r.durationS.toFixed(0)} s`;
  const body = [
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    panel(10, 40, w - 20, h, 'CPU (% of a core)', '%', [
      { label: 'server', value: r.cpuCores.server * 100 },
      { label: 'workers', value: r.cpuCores.workers * 100 },
      { label: 'per session', value: r.cpuCoresPerSession * 100 },
    ]),
    panel(10 + w, 40, w - 20, h, 'Delay added (ms)', 'ms', [
      { label: 'p50', value: r.delayMs.p50 },
      { label: 'p95', value: r.delayMs.p95 },
      { label: 'p99', value: r.delayMs.p99 },
    ]),
    panel(10 + 2 * w, 40, w - 20, h, 'Join to first RTP (ms)', 'ms', [
      { label: 'p50', value: r.joinMs.p50 },
      { label: 'p95', value: r.joinMs.p95 },
      { label: 'p99', value: r.joinMs.p99 },
    ]),
    panel(10 + 3 * w, 40, w - 20, h, 'Loss (%)', '%', [{ label: 'loss', value: r.lossRatio * 100 }]),
  ].join('\n');
  return svgDocument(4 * w + 10, h + 60, body);
}

/** Ramp: sessions on x; CPU (cores) on the left axis, loss (%) on the right axis. */
export function renderCapacityCurve(r: BenchReport, steps: StepReport[]): string {
  const width = 720;
  const height = 400;
  const left = 70;
  const right = width - 70;
  const top = 50;
  const bottom = height - 60;
  const maxSessions = Math.max(1, ...steps.map((s) => s.sessions));
  const maxCpu = niceMax(Math.max(...steps.map((s) => s.cpuCores.total)));
  const maxLoss = niceMax(Math.max(1, ...steps.map((s) => s.lossRatio * 100)));
  const x = (sessions: number): number => left + (sessions / maxSessions) * (right - left);
  const yCpu = (cores: number): number => bottom - (cores / maxCpu) * (bottom - top);
  const yLoss = (lossPct: number): number => bottom - (lossPct / maxLoss) * (bottom - top);
  const line = (points: [number, number][], colour: string): string =>
    `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>` +
    points
      .map(([a, b]) => `<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="3" fill="${colour}"/>`)
      .join('');
  const ticks: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const fy = bottom - (i / 4) * (bottom - top);
    ticks.push(
      `<line x1="${left}" y1="${fy}" x2="${right}" y2="${fy}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${fy + 4}" text-anchor="end" font-size="11" fill="#3b7dd8">${Number(((maxCpu * i) / 4).toPrecision(3))}</text>`,
      `<text x="${right + 6}" y="${fy + 4}" font-size="11" fill="#d83b3b">${Number(((maxLoss * i) / 4).toPrecision(3))}</text>`,
    );
  }
  for (const s of steps) {
    ticks.push(
      `<text x="${x(s.sessions)}" y="${bottom + 16}" text-anchor="middle" font-size="11">${s.sessions}</text>`,
    );
  }
  const lastGood = r.ramp?.lastGoodSessions ?? 0;
  const body = [
    `<text x="${left}" y="24" font-size="14" font-weight="bold">${escapeXml(`${r.scenario} on ${r.target}: capacity (last good ${lastGood} sessions)`)}</text>`,
    ...ticks,
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#444"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#3b7dd8"/>`,
    `<line x1="${right}" y1="${top}" x2="${right}" y2="${bottom}" stroke="#d83b3b"/>`,
    lastGood > 0
      ? `<line x1="${x(lastGood)}" y1="${top}" x2="${x(lastGood)}" y2="${bottom}" stroke="#2a2" stroke-dasharray="4 3"/>`
      : '',
    r.ramp
      ? `<line x1="${left}" y1="${yLoss(r.ramp.thresholds.maxLossRatio * 100)}" x2="${right}" y2="${yLoss(r.ramp.thresholds.maxLossRatio * 100)}" stroke="#d83b3b" stroke-dasharray="2 4"/>`
      : '',
    line(
      steps.map((s) => [x(s.sessions), yCpu(s.cpuCores.total)]),
      '#3b7dd8',
    ),
    line(
      steps.map((s) => [x(s.sessions), yLoss(s.lossRatio * 100)]),
      '#d83b3b',
    ),
    `<text x="${(left + right) / 2}" y="${height - 20}" text-anchor="middle">sessions</text>`,
    `<text x="${left - 50}" y="${top - 12}" fill="#3b7dd8">CPU (cores)</text>`,
    `<text x="${right - 20}" y="${top - 12}" fill="#d83b3b">loss (%)</text>`,
  ].join('\n');
  return svgDocument(width, height, body);
}

/** A scenario's latency distributions: one panel of p50 / p95 / p99 bars per distribution. */
export function renderLatencyChart(title: string, latencies: Record<string, Percentiles>): string {
  const w = 220;
  const h = 260;
  const entries = Object.entries(latencies);
  const body = [
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    ...entries.map(([name, p], i) =>
      panel(10 + i * w, 40, w - 20, h, `${name} (ms)`, 'ms', [
        { label: 'p50', value: p.p50 },
        { label: 'p95', value: p.p95 },
        { label: 'p99', value: p.p99 },
      ]),
    ),
  ].join('\n');
  return svgDocument(Math.max(1, entries.length) * w + 10, h + 60, body);
}
