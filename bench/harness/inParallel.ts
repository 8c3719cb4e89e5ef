/** Runs `run(0)` to `run(count - 1)`, at most `concurrency` at a time, each index once, in order of start. */
export async function inParallel(
  count: number,
  concurrency: number,
  run: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      for (let i = next++; i < count; i = next++) await run(i);
    }),
  );
}
