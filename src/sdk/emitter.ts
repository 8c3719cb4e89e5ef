/**
 * A small typed event emitter: each event name maps to the tuple of its listener's arguments,
 * so `room.on('trackAdded', (track) => ...)` is checked by the compiler. A throwing listener
 * does not stop the others (errors are reported to `onListenerError`).
 */
export type EventMap = Record<string, unknown[]>;
export type Listener<Args extends unknown[]> = (...args: Args) => void;

export class TypedEmitter<Events extends EventMap> {
  private readonly listeners = new Map<keyof Events, Set<Listener<unknown[]>>>();

  constructor(private readonly onListenerError: (error: unknown) => void = reportListenerError) {}

  on<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as unknown as Listener<unknown[]>);
    return this;
  }

  off<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this {
    this.listeners.get(event)?.delete(listener as unknown as Listener<unknown[]>);
    return this;
  }

  once<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this {
    const wrapper: Listener<Events[E]> = (...args) => {
      this.off(event, wrapper);
      listener(...args);
    };
    return this.on(event, wrapper);
  }

  /** Resolves with the arguments of the next emission of `event`. */
  next<E extends keyof Events>(event: E): Promise<Events[E]> {
    return new Promise((resolve) => this.once(event, (...args) => resolve(args)));
  }

  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  removeAllListeners(): void {
    this.listeners.clear();
  }

  protected emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}

function reportListenerError(error: unknown): void {
  // A bug in application code must not break the SDK's state machine; surface it asynchronously.
  setTimeout(() => {
    throw error;
  }, 0);
}
