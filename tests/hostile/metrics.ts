/** Reads `sfu_rejections_total{code=...}` from the server's real /metrics endpoint. */
export async function rejections(baseUrl: string, code: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`sfu_rejections_total{code="${code}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Reads one unlabelled metric value (0 when absent). */
export async function metricValue(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : 0;
}
