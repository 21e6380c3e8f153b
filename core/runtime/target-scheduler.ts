/**
 * Runs jobs so that jobs of one target run one after another, in arrival
 * order, while different targets run in parallel, at most `concurrency` at a
 * time.
 *
 * Backpressure counts at most `perTarget` jobs of any one target against
 * `capacity`: a target that is slow, backing off or rate-limited piles up
 * behind itself without stopping the reading that feeds every other target.
 * `limit` bounds the memory of all jobs held, whatever their target.
 */
export class TargetScheduler<Job> {
  #queues = new Map<string, Job[]>();
  #waiting: string[] = [];
  #active = 0;
  #buffered = 0;
  /** Σ min(queue length, perTarget): what counts against `capacity`. */
  #counted = 0;
  #idle: Array<() => void> = [];
  #room: Array<() => void> = [];
  readonly #concurrency: number;
  readonly #capacity: number;
  readonly #perTarget: number;
  readonly #limit: number;
  readonly #run: (job: Job) => Promise<void | { yieldTo: Job }>;
  readonly #order: ((a: Job, b: Job) => number) | undefined;
  #running = new Set<string>();

  /**
   * `order`, when given, keeps each target's queue sorted (jobs taken over
   * from a stopped consumer arrive late but may be older). `run` may answer
   * `{ yieldTo: other }`, `other` a job queued for the same target: `other`
   * runs next, wherever it was queued, and the job goes back to its place.
   * That is how a job that must wait for another job held here lets it run,
   * whatever their order here (otherwise the two would wait for each other).
   */
  constructor(options: {
    concurrency: number;
    capacity: number;
    perTarget?: number;
    limit?: number;
    order?: (a: Job, b: Job) => number;
    run: (job: Job) => Promise<void | { yieldTo: Job }>;
  }) {
    this.#order = options.order;
    this.#concurrency = options.concurrency;
    this.#capacity = options.capacity;
    this.#perTarget = options.perTarget ?? options.capacity;
    this.#limit = options.limit ?? options.capacity;
    this.#run = options.run;
  }

  get buffered(): number {
    return this.#buffered;
  }

  /** Every job accepted and not yet finished. */
  *jobs(): Iterable<Job> {
    for (const queue of this.#queues.values()) yield* queue;
  }

  /** The jobs of `target` queued behind the one it runs now. */
  behind(target: string): Job[] {
    return this.#queues.get(target)?.slice(1) ?? [];
  }

  push(target: string, job: Job): void {
    this.#buffered += 1;
    const queue = this.#queues.get(target);
    if (queue) {
      this.#insert(target, queue, job);
      if (queue.length <= this.#perTarget) this.#counted += 1;
      return;
    }
    this.#counted += 1;
    this.#queues.set(target, [job]);
    this.#waiting.push(target);
    this.#pump();
  }

  /** Resolves when there is room for more jobs (see the class comment). */
  async hasRoom(): Promise<void> {
    while (!this.#roomy()) await new Promise<void>((resolve) => this.#room.push(resolve));
  }

  #insert(target: string, queue: Job[], job: Job): void {
    let at = queue.length;
    // Never in front of the running job (it stays at index 0 while it runs).
    const first = this.#running.has(target) ? 1 : 0;
    while (this.#order && at > first && this.#order(job, queue[at - 1]!) < 0) at -= 1;
    queue.splice(at, 0, job);
  }

  #roomy(): boolean {
    return this.#counted < this.#capacity && this.#buffered < this.#limit;
  }

  /** Resolves when every accepted job has finished. */
  async drained(): Promise<void> {
    while (this.#buffered > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #pump(): void {
    while (this.#active < this.#concurrency && this.#waiting.length > 0) {
      const target = this.#waiting.shift()!;
      this.#active += 1;
      void this.#drain(target);
    }
  }

  async #drain(target: string): Promise<void> {
    const queue = this.#queues.get(target)!;
    // The job stays at the head of its queue while it runs, so `jobs()` sees it.
    while (queue.length > 0) {
      this.#running.add(target);
      const outcome = await this.#run(queue[0]!).catch(() => {
        // `run` owns its failures (the worker settles every outcome); one that
        // escapes must not stall this target's queue or crash the process.
      });
      this.#running.delete(target);
      if (outcome) {
        // (A job not queued behind this one: this one runs again.)
        const next = queue.indexOf(outcome.yieldTo);
        if (next > 0) {
          const [first] = queue.splice(next, 1);
          this.#insert(target, queue, queue.shift()!);
          queue.unshift(first!);
        }
        continue;
      }
      if (queue.length <= this.#perTarget) this.#counted -= 1;
      queue.shift();
      this.#buffered -= 1;
      if (this.#roomy()) this.#room.splice(0).forEach((wake) => wake());
      // Give the slot to a waiting target, so that one busy target cannot starve the others.
      if (queue.length > 0 && this.#waiting.length > 0) {
        this.#waiting.push(target);
        break;
      }
    }
    if (queue.length === 0) this.#queues.delete(target);
    this.#active -= 1;
    if (this.#buffered === 0) this.#idle.splice(0).forEach((wake) => wake());
    this.#pump();
  }
}
