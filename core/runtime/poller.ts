/**
 * Runs a tick now and again `intervalMs` after each one ends (never two at
 * once), until stopped; a failed tick is reported and the next one goes on.
 * The hub's timed duties (escalations, digests) poll Redis this way, so that
 * any hub may do them and a stopped one lets its last tick finish.
 */
export class Poller {
  readonly #tick: () => Promise<unknown>;
  readonly #intervalMs: number;
  readonly #onError: (err: Error) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(tick: () => Promise<unknown>, intervalMs: number, onError: (err: Error) => void) {
    this.#tick = tick;
    this.#intervalMs = intervalMs;
    this.#onError = onError;
  }

  /** True once stopped: a long tick checks it between steps. */
  get stopped(): boolean {
    return this.#stopped;
  }

  start(): void {
    this.#stopped = false;
    const loop = () => {
      if (this.#stopped) return;
      this.#running = this.#tick()
        .then(() => undefined, this.#onError)
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(loop, this.#intervalMs);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
