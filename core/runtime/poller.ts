/**
 * A duty that runs its tick now and again `intervalMs` after each one ends
 * (never two at once), until stopped; a failed tick is reported and the next
 * one goes on. The hub's timed duties (escalations, digests) poll Redis this
 * way, so that any hub may do them and a stopped one lets its last tick finish.
 */
export abstract class Poller {
  readonly #intervalMs: number;
  readonly #onError: (err: Error) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  /** `intervalMs`: a quarter of a second unless told (due times are kept to about that). */
  protected constructor(intervalMs: number | undefined, onError: (err: Error) => void) {
    this.#intervalMs = intervalMs ?? 250;
    this.#onError = onError;
  }

  /** One round of the duty; callable directly (tests do). */
  abstract tick(): Promise<unknown>;

  /** True once stopped: a long tick checks it between steps. */
  protected get stopped(): boolean {
    return this.#stopped;
  }

  start(): void {
    this.#stopped = false;
    const loop = () => {
      if (this.#stopped) return;
      this.#running = this.tick()
        .then(() => undefined, (err: Error) => this.#onError(err))
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
