/**
 * One timer for every synthetic stream in the process. node-datachannel peers are CPU-heavy; a
 * timer per stream would multiply wake-ups, so all publishers and subscribers hang off one tick.
 */
export interface Ticking {
  /** Called on every tick with the process clock (performance.now(), milliseconds). */
  tick(nowMs: number): void;
}

export class MediaScheduler {
  private readonly members = new Set<Ticking>();
  private timer: NodeJS.Timeout | undefined;
  private ticks = 0;
  private lateTicks = 0;
  private failures = 0;

  /** @param tickMs Tick period; 5 ms keeps pacing smooth while costing little. */
  constructor(private readonly tickMs = 5) {}

  add(member: Ticking): void {
    this.members.add(member);
    if (!this.timer) {
      this.timer = setInterval(() => this.runTick(), this.tickMs);
    }
  }

  remove(member: Ticking): void {
    this.members.delete(member);
    if (this.members.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  get size(): number {
    return this.members.size;
  }

  /**
   * Ticks so far and those that fired more than two periods late: a late share above a few percent
   * means the load generator itself is saturated and its figures are suspect.
   */
  lateTickCounts(): { ticks: number; late: number; failures: number } {
    return { ticks: this.ticks, late: this.lateTicks, failures: this.failures };
  }

  private lastTickAt = 0;

  private runTick(): void {
    const now = performance.now();
    if (this.lastTickAt > 0 && now - this.lastTickAt > this.tickMs * 3) this.lateTicks++;
    this.lastTickAt = now;
    this.ticks++;
    for (const member of this.members) {
      try {
        member.tick(now);
      } catch {
        // A track that closed under its stream throws; one bad member must not stall the rest.
        this.failures++;
      }
    }
  }
}

/** The scheduler shared by default when callers do not bring their own. */
export const sharedScheduler = new MediaScheduler();
