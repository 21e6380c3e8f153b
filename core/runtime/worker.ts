import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubConfig } from '../config/schema.ts';
import type { Metrics } from '../metrics.ts';
import { callSignal } from '../abort.ts';
import { deliveryDeadLetter } from '../journal/dead-letter.ts';
import { readDelivery } from '../journal/delivery.ts';
import type { DeliveryRecord } from '../journal/record.ts';
import type { ChannelSender, Delivery, DeliveryReceipt, OutboundMessage } from '../plugin-api.ts';
import type { Redactor } from '../redactor.ts';
import type { Keys } from '../redis/keys.ts';
import { duplicateConnection } from '../redis/connect.ts';
import { type StreamEntry, consumeStream, toEntries } from '../redis/stream-consumer.ts';
import { Heartbeat } from './heartbeat.ts';
import { HANDED_BACK_IDLE_MS, dropStaleHeads, handOver, ownPending, setIdle } from './pending.ts';
import { type Failure, type Tries, afterFailure, classifyFailure, deadLetterReason, retryDelay, retryPolicy } from './retry-policy.ts';
import { TargetScheduler } from './target-scheduler.ts';
import { type Outcome, TickCall } from './tick-call.ts';

interface Job {
  entry: string;
  /** Its `target` is the receiver, normalized: it orders the target's deliveries and names it in records. */
  delivery: Delivery;
  /** The target as written in the mapping: what the plugin delivers to. */
  address: string;
  fields: Record<string, string>;
  record: DeliveryRecord;
}

export interface WorkerDeps {
  redis: Redis;
  keys: Keys;
  config: HubConfig;
  logger: Logger;
  metrics: Metrics;
  redactor: Redactor;
  consumerName: string;
}

/**
 * The workers of one channel in this process: consumer group `<channel>` on
 * `notify:deliver:<channel>`, deliveries to one target in order, different
 * targets in parallel, and the one retry policy of the hub around the
 * plugin's `deliver`.
 */
export class ChannelWorker {
  readonly channel: string;
  #deps: WorkerDeps;
  #sender: ChannelSender;
  #logger: Logger;
  #scheduler: TargetScheduler<Job>;
  #tick: TickCall;
  #heartbeat: Heartbeat;
  /** Stop: no more reading, no new attempts, no more waiting between attempts. */
  #controller = new AbortController();
  /** Aborts calls to the peer still running when the grace period is over. */
  #cutoff = new AbortController();
  #reader: Redis | undefined;
  /** Calls to the peer running now. */
  #calling = 0;
  /** Deliveries in flight when the stop began that were then settled (sent or dead-lettered). */
  #settledWhileStopping = 0;
  #running: Promise<void> | undefined;
  #refresh: NodeJS.Timeout | undefined;
  /** Every delivery read and not yet settled here, by stream entry id: read again, it is not taken twice. */
  #held = new Map<string, Job>();
  /**
   * Final outcomes queued and not yet written, by stream entry id. A delivery is
   * done once its outcome is queued in the tick's call (core/runtime/tick-call.ts):
   * the target's next delivery asks its turn in the same call, after it, so Redis
   * runs the two in that order and the turn costs no command of its own.
   */
  #settling = new Map<string, Promise<void>>();
  /** The last refresh of the idle times, awaited before handing back (which must come last). */
  #keeping: Promise<void> = Promise.resolve();
  /** The last messages read, by entry id: their deliveries share one message object, so a plugin renders it once (see core/render-cache.ts). */
  #messages = new Map<string, OutboundMessage>();
  /** Outcomes cannot be written (logged once, and once when they can again). */
  #recordFailing = false;
  /** Whether settled heads wake this worker: unknown until its first wait for another worker, false when its Redis user may not subscribe. */
  #wakeable: boolean | undefined;
  #subscriber: Redis | undefined;
  #subscribing: Promise<void> | undefined;
  /** Emits an order list's key when its head was settled: deliveries waiting on it ask again at once. */
  #heads = new EventEmitter().setMaxListeners(0);
  /**
   * The wake-ups heard, counted, and the count at each list's last: one can arrive before the answer that
   * told a delivery to wait (another connection), and must still end that wait.
   */
  #wakes = 0;
  #lastWake = new Map<string, number>();
  /** How often a delivery waiting for another worker's older one asks again if no wake-up comes. */
  #orderPollMs: number;
  /** Entry ids of deliveries other workers handed to this one, read from the stream together. */
  #handedOver = new Set<string>();
  /** The most deliveries this worker holds: reading stops there, and another worker hands it no more. */
  #limit: number;
  /** This worker's wake channel, and the prefix of every worker's of this channel (a hand-over's address). */
  #wake: { own: string; prefix: string };

  constructor(deps: WorkerDeps, channel: string, sender: ChannelSender, concurrency: number, options: { orderPollMs?: number } = {}) {
    // Copied out of what may be the container's cradle: each read of a cradle property is a resolve, and a
    // delivery reads these a dozen times (bench/: 1.2 KB of garbage per delivery).
    const { redis, keys, config, logger, metrics, redactor, consumerName } = deps;
    this.#deps = { redis, keys, config, logger, metrics, redactor, consumerName };
    this.#orderPollMs = options.orderPollMs ?? 100;
    this.#wake = { own: keys.wake(channel, consumerName), prefix: keys.wake(channel, '') };
    this.channel = channel;
    this.#sender = sender;
    this.#logger = deps.logger.child({ component: 'worker', channel });
    const capacity = Math.max(concurrency * 8, deps.config.delivery.batchSize * 2);
    this.#limit = capacity * 8;
    this.#scheduler = new TargetScheduler<Job>({
      concurrency,
      capacity,
      // A stuck target counts for little against the read-ahead, so it cannot stall the others…
      perTarget: 8,
      // …while memory stays bounded by all the deliveries held (deliveries handed to another worker count there).
      limit: this.#limit,
      order: (a, b) => compareEntryIds(a.entry, b.entry),
      run: async (job) => {
        // Handed to another worker while it was queued here (#handOverBehind): dropped without a word to Redis.
        if (this.#held.get(job.entry) !== job) return undefined;
        // #deliver owns its failures; one that escapes still ends the job.
        const outcome = await this.#deliver(job).catch(() => undefined);
        if (!outcome && this.#held.get(job.entry) === job) this.#held.delete(job.entry);
        return outcome;
      },
    });
    this.#tick = new TickCall({
      redis,
      keys,
      channel,
      consumer: consumerName,
      retentionMs: config.recordRetention,
      eventsMaxLen: config.eventsMaxLen,
      markTtlMs: config.delivery.timeout + 1000,
      wake: this.#wake.own,
      wakePrefix: this.#wake.prefix,
      handOverBelow: this.#limit,
    });
    this.#heartbeat = new Heartbeat(deps.redis, deps.keys.workers(channel), deps.consumerName);
  }

  start(): void {
    const { redis, keys, config, consumerName } = this.#deps;
    const stream = keys.deliver(this.channel);
    this.#reader = duplicateConnection(redis, `hub:${consumerName}:${this.channel}`);
    this.#heartbeat.start();
    // Listening from the start is what lets another worker hand this one the deliveries queued behind its own (#begin).
    void this.#listen().catch((err: Error) => this.#logger.warn({ err: err.message }, 'cannot listen for wake-ups and hand-overs yet; trying again at the first wait'));
    // Deliveries that wait (backoff, a long 429) stay pending at this consumer;
    // claiming them again resets their idle time, so a live worker's slow
    // deliveries are not taken over as if it had died.
    this.#refresh = setInterval(() => void this.#keepClaimed(stream), Math.max(1000, config.delivery.claimIdle / 3)).unref();
    this.#running = consumeStream(
      {
        redis,
        reader: this.#reader,
        stream,
        group: this.channel,
        consumer: consumerName,
        batchSize: config.delivery.batchSize,
        blockMs: config.ingress.blockMs,
        claimIdleMs: config.delivery.claimIdle,
        logger: this.#logger,
        ready: () => this.#scheduler.hasRoom(),
        handle: async (entries) => this.#accept(entries),
      },
      this.#controller.signal,
    );
    this.#logger.info({ stream, consumer: consumerName }, 'worker consuming');
  }

  /**
   * Stop reading, let deliveries in flight finish (up to `graceMs`), leave the
   * rest pending for another worker. Resolves with how many of the calls in
   * flight finished and how many were cut at the end of the grace.
   */
  async stop(graceMs = this.#deps.config.delivery.stopGrace): Promise<{ finished: number; cutOff: number }> {
    this.#controller.abort();
    this.#reader?.disconnect();
    // Deaf from now on (no wait is left to wake), so that no worker hands this one a delivery after it
    // has handed back what it holds; one handed over before Redis sees the connection closed is handed back too.
    this.#subscriber?.disconnect();
    await this.#running;
    // Calls to the peer in flight finish and are settled: cutting them would
    // leave deliveries the peer has accepted to be sent again by another worker.
    await Promise.race([this.#settled(), sleep(graceMs, undefined, { ref: false })]);
    const cutOff = this.#calling;
    this.#cutoff.abort();
    await Promise.race([this.#settled(), sleep(1000, undefined, { ref: false })]);
    clearInterval(this.#refresh);
    await this.#keeping;
    await this.#handBack();
    await this.#heartbeat.stop();
    await this.#sender.close?.();
    return { finished: this.#settledWhileStopping, cutOff };
  }

  /** Resolves when every delivery held has finished and its outcome is written (or given up at the cutoff). */
  async #settled(): Promise<void> {
    await this.#scheduler.drained();
    await Promise.all(this.#settling.values());
  }

  /** How a stop has gone so far: deliveries settled since it began, calls to peers still running. */
  get stopReport(): { finished: number; cutOff: number } {
    return { finished: this.#settledWhileStopping, cutOff: this.#calling };
  }

  /**
   * Everything still pending to this worker — the read-ahead, deliveries
   * waiting for a retry, a batch whose reply was cut by the stop — is marked
   * idle for ages, so that the next worker's first claim takes it at once
   * instead of after `delivery.claimIdle`.
   */
  async #handBack(): Promise<void> {
    const { redis, consumerName } = this.#deps;
    const stream = this.#deps.keys.deliver(this.channel);
    try {
      const ids = await ownPending(redis, stream, this.channel, consumerName);
      if (ids.length === 0) return;
      const count = await setIdle(redis, stream, this.channel, consumerName, ids, HANDED_BACK_IDLE_MS);
      this.#logger.info({ count }, 'handed back the deliveries read and not made, for the next worker');
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message }, `could not hand back the deliveries read and not made; another worker takes them over after ${this.#deps.config.delivery.claimIdle} ms`);
    }
  }

  async #accept(entries: StreamEntry[]): Promise<void> {
    for (const entry of entries) {
      if (this.#held.has(entry.id)) continue;
      const { delivery, address } = readDelivery(this.#deps.keys, this.channel, entry.id, entry.fields);
      delivery.message = this.#sharedMessage(delivery.messageId, delivery.message, entry.fields);
      const record: DeliveryRecord = { channel: this.channel, target: delivery.target, state: 'retrying', attempts: 0, at: '', history: [] };
      const job: Job = { entry: entry.id, delivery, address, fields: entry.fields, record };
      this.#held.set(entry.id, job);
      this.#scheduler.push(delivery.target, job);
    }
  }

  /**
   * The message object the deliveries of one message share: one rendering per
   * channel, and one copy of its body in memory (the entry's own is dropped).
   */
  #sharedMessage(messageId: string, message: OutboundMessage, fields: Record<string, string>): OutboundMessage {
    const shared = this.#messages.get(messageId);
    if (shared && shared.body === message.body && shared.subject === message.subject && shared.format === message.format && shared.producerId === message.producerId && shared.to.join() === message.to.join()) {
      if (fields.body !== undefined) fields.body = shared.body;
      return shared;
    }
    this.#messages.set(messageId, message);
    if (this.#messages.size > 256) this.#messages.delete(this.#messages.keys().next().value!);
    return message;
  }

  async #deliver(job: Job): Promise<void | { yieldTo: Job }> {
    const { config, metrics } = this.#deps;
    const policy = retryPolicy(config.delivery);
    const shutdown = this.#controller.signal;
    let tries: Tries = { counted: 0, rateLimitedInARow: 0 };
    for (let first = true; !shutdown.aborted; first = false) {
      // Only the consumer the group lists may make a delivery: one taken over by
      // another worker, or read again by a group made anew, is that one's now.
      // Its turn is asked once: a delivery that heads its target's list stays at the head until settled.
      const begun = await this.#begin(job, first);
      if (begun !== 'go') return begun === 'stop' ? undefined : begun;
      job.record.attempts += 1;
      try {
        const receipt = await this.#attempt({ ...job.delivery, target: job.address, attempt: tries.counted + 1 });
        metrics.attempts.inc({ channel: this.channel, result: 'ok', code: '' });
        if (receipt.details?.encrypted) metrics.encrypted.inc({ channel: this.channel });
        this.#note(job, 'sent');
        if (receipt.peerId) job.record.peerId = receipt.peerId;
        if (receipt.details) job.record.details = receipt.details;
        return this.#settle(job, 'sent');
      } catch (err) {
        // Stopping: what failed stays pending for the next worker, without spending an attempt here.
        if (shutdown.aborted) return;
        const failure = classifyFailure(err);
        failure.message = this.#deps.redactor.redact(failure.message);
        metrics.attempts.inc({ channel: this.channel, result: failure.permanent ? 'permanent' : failure.rateLimited ? 'rate_limited' : 'retryable', code: failure.code });
        this.#note(job, failure.rateLimited ? 'rate limited' : failure.permanent ? 'refused' : 'failed', failure.message);
        if (failure.permanent) return this.#settle(job, 'dead', failure, deadLetterReason(this.channel, failure, policy));
        tries = afterFailure(tries, failure);
        if (tries.counted >= policy.maxAttempts) return this.#settle(job, 'dead', failure, deadLetterReason(this.channel, failure, policy));
        const wait = retryDelay(policy, failure, tries);
        this.#settle(job, 'retrying', failure);
        this.#logger.debug({ target: job.delivery.target, attempt: tries.counted + 1, waitMs: wait, err: failure.message }, 'delivery will be retried');
        await sleep(wait, undefined, { signal: shutdown }).catch(() => {});
      }
    }
  }

  /**
   * One call to the peer, cut at `delivery.timeout` or at the end of a stop's
   * grace (core/abort.ts: nothing of it outlives the call).
   */
  async #attempt(delivery: Delivery): Promise<DeliveryReceipt> {
    const call = callSignal([this.#cutoff.signal], { ms: this.#deps.config.delivery.timeout, reason: () => new DOMException('the peer did not answer in time', 'TimeoutError') });
    this.#calling += 1;
    try {
      return await this.#sender.deliver(delivery, call.signal);
    } finally {
      this.#calling -= 1;
      call.release();
    }
  }

  #note(job: Job, result: string, error?: string): void {
    const at = new Date().toISOString();
    job.record.at = at;
    job.record.history.push({ at, result, ...(error ? { error } : {}) });
    if (job.record.history.length > 10) job.record.history.splice(0, job.record.history.length - 10);
  }

  #settle(job: Job, kind: Outcome['kind'], failure?: Failure, reason?: string): void {
    job.record.state = kind;
    if (failure) job.record.error = failure.message;
    const outcome: Outcome = { kind, channel: this.channel, streamEntry: job.entry, deliveryId: job.delivery.id, messageId: job.delivery.messageId, record: { ...job.record } };
    if (kind === 'dead') {
      outcome.deadLetter = deliveryDeadLetter(
        job.fields,
        job.delivery,
        {
          reason: reason ?? failure?.message ?? 'the delivery failed',
          attempts: job.record.attempts,
          ...(failure ? { error: `${failure.code}: ${failure.message}` } : {}),
          at: job.record.at,
        },
        this.#deps.config.ingress.maxBodyBytes,
      );
      this.#deps.metrics.deadLetters.inc({ stage: 'delivery' });
      this.#logger.warn({ target: job.delivery.target, entry: job.delivery.messageId, reason: outcome.deadLetter.reason }, 'delivery dead-lettered');
    }
    if (kind !== 'retrying') this.#deps.metrics.deliveries.inc({ channel: this.channel, outcome: kind });
    const done = this.#untilWritten(job, outcome, this.#tick.settle(outcome));
    if (kind !== 'retrying') {
      this.#settling.set(job.entry, done);
      void done.finally(() => this.#settling.delete(job.entry));
    }
  }

  /**
   * A final outcome is written whatever it takes (the target's next delivery
   * waits for it): given up, the delivery would be made again by whoever
   * takes it over.
   */
  async #untilWritten(job: Job, outcome: Outcome, written: Promise<void>): Promise<void> {
    const { kind } = outcome;
    for (let failures = 0; ; failures += 1) {
      try {
        await written;
        if (kind !== 'retrying') {
          this.#held.delete(job.entry);
          if (this.#controller.signal.aborted) this.#settledWhileStopping += 1;
        }
        if (this.#recordFailing && kind !== 'retrying') {
          this.#recordFailing = false;
          this.#logger.info('delivery outcomes are recorded again');
        }
        return;
      } catch (err) {
        const message = (err as Error).message;
        if (kind === 'retrying' || this.#cutoff.signal.aborted) {
          this.#logger.debug({ err: message, kind }, 'could not record a delivery outcome');
          return;
        }
        if (!this.#recordFailing) this.#logger.error({ err: message }, 'cannot record delivery outcomes; retrying until Redis takes them (their targets wait meanwhile)');
        this.#recordFailing = true;
        await sleep(Math.min(2000, 100 * 2 ** Math.min(failures, 5)), undefined, { signal: this.#cutoff.signal }).catch(() => {});
        written = this.#tick.settle(outcome);
      }
    }
  }

  /**
   * Whether this worker may make an attempt now. On the first attempt, per-target
   * order across workers: the delivery goes only when it heads its target's
   * order list, i.e. every older delivery to that target is settled, wherever
   * it was being made. Then the group must still list it as pending to this
   * worker (if not, it is dropped here), and no other worker may be making it
   * (then it waits for that attempt to end). Asked in the tick's one call (core/runtime/tick-call.ts), after the
   * outcomes of the tick: the previous delivery to the target, settled just before, is settled when Redis asks.
   */
  async #begin(job: Job, first: boolean): Promise<'go' | { yieldTo: Job } | 'stop'> {
    const { redis, keys } = this.#deps;
    const stream = keys.deliver(this.channel);
    const target = job.delivery.target;
    const order = first ? { list: keys.order(this.channel, target), waiters: keys.orderWaiters(this.channel, target) } : undefined;
    let failed = false;
    let unwoken = false;
    for (let waited = 0; !this.#controller.signal.aborted; waited += 1) {
      try {
        const asked = this.#wakes;
        const answer = await this.#tick.turn(job.entry, order);
        if (answer === 'go') return 'go';
        if (answer === 'not ours' || (typeof answer === 'object' && 'handedTo' in answer)) {
          this.#held.delete(job.entry);
          if (answer === 'not ours') this.#logger.debug({ target, entry: job.entry }, 'no longer pending to this worker (taken over, settled, or its group made anew); left to the one that has it');
          else {
            this.#logger.debug({ target, entry: job.entry, to: answer.handedTo }, "handed to the worker making this target's older deliveries");
            await this.#handOverBehind(target, answer.handedTo);
          }
          return 'stop';
        }
        if (answer !== 'wait') {
          // The head is this worker's own, its outcome not yet written (a call that failed, tried again): asked again once written.
          const settling = this.#settling.get(answer.after);
          if (settling) {
            await settling;
            continue;
          }
          // The list decides the order, not the order of this process's queue:
          // a head held here runs now, wherever it is queued.
          const head = this.#held.get(answer.after);
          if (head && head.delivery.target === target) return { yieldTo: head };
          // A head settled before this worker listened would wake nobody: the first wait listens, then asks again.
          if (this.#wakeable === undefined) {
            await this.#listen();
            continue;
          }
          // Heads settled without leaving the list (a purge, a deleted or trimmed stream) wake nobody: all dropped in one step.
          if (unwoken && (await dropStaleHeads(redis, order!.list, stream)) > 0) continue;
          if (waited % 50 === 10) this.#logger.info({ target, waitingFor: answer.after }, 'an older delivery to this target is still being made elsewhere; waiting for it to keep the order');
          // The settling of the head wakes this delivery; asking every `orderPollMs` is for a wake-up lost (a
          // reconnecting subscription). Without wake-ups it asks soon, then every 100 ms.
          unwoken = !(await this.#headSettled(order!.list, asked, this.#wakeable ? this.#orderPollMs : Math.min(100, 10 * 2 ** waited)));
          continue;
        }
      } catch (err) {
        // Once per delivery: with Redis away, every delivery held asks every 100 ms.
        this.#logger[failed ? 'debug' : 'warn']({ target, entry: job.entry, err: (err as Error).message }, 'cannot ask Redis whether a delivery may be made now; asking again');
        failed = true;
      }
      // What waits is usually being made elsewhere and settles within one delivery: ask soon, then every 100 ms.
      await sleep(Math.min(100, 10 * 2 ** waited), undefined, { signal: this.#controller.signal }).catch(() => {});
    }
    return 'stop';
  }

  /**
   * After a delivery was handed to `holder`, the deliveries queued here behind it for the same target follow in
   * one step (each would otherwise be handed over by a begin of its own). Those handed over are dropped here
   * when their turn comes; the rest (the holder at its bound, a failure) begin as usual.
   */
  async #handOverBehind(target: string, holder: string): Promise<void> {
    const { redis, keys, consumerName } = this.#deps;
    const ids = this.#scheduler.behind(target).flatMap((job) => (this.#held.get(job.entry) === job ? [job.entry] : []));
    try {
      const at = { stream: keys.deliver(this.channel), group: this.channel, consumer: consumerName, wakePrefix: this.#wake.prefix };
      for (const id of await handOver(redis, at, holder, ids, this.#limit)) this.#held.delete(id);
    } catch (err) {
      this.#logger.debug({ err: (err as Error).message, target }, 'could not hand the deliveries behind over; each asks its turn');
    }
  }

  /** Subscribe to this worker's wake channel (once; again after a failure other than a refusal). */
  async #listen(): Promise<void> {
    this.#subscribing ??= this.#subscribe().finally(() => (this.#subscribing = undefined));
    await this.#subscribing;
  }

  async #subscribe(): Promise<void> {
    const { redis, consumerName } = this.#deps;
    const subscriber = duplicateConnection(redis, `hub:${consumerName}:${this.channel}:wake`);
    // Kept at once, so that a stop disconnects it even while it waits for Redis.
    this.#subscriber = subscriber;
    // A settled head's order list (wake the deliveries waiting on it), or the entry ids of deliveries handed to this worker.
    subscriber.on('message', (_wake: string, message: string) => {
      if (!ENTRY_IDS.test(message)) return this.#woken(message);
      for (const entry of message.split(' ')) this.#takeHandedOver(entry);
    });
    try {
      await subscriber.subscribe(this.#wake.own);
    } catch (err) {
      subscriber.disconnect();
      if (this.#subscriber === subscriber) this.#subscriber = undefined;
      if (this.#controller.signal.aborted) return;
      const message = (err as Error).message;
      if (!message.includes('NOPERM')) throw err;
      this.#wakeable = false;
      this.#logger.warn({ err: message }, "the hub's Redis user may not subscribe to wake-ups, so a delivery waiting for another worker's older one to the same target asks again every 100 ms instead; grant +subscribe +publish and the wake channels (README, the ACL line)");
      return;
    }
    this.#wakeable = true;
  }

  /** A delivery another worker handed to this one (see #begin): read with the others handed over in the same moment. */
  #takeHandedOver(entry: string): void {
    if (this.#controller.signal.aborted || this.#held.has(entry)) return;
    if (this.#handedOver.size === 0) setImmediate(() => void this.#readHandedOver());
    this.#handedOver.add(entry);
  }

  /**
   * Take the deliveries handed over as if read from the stream. One that cannot be read now is still pending
   * to this worker, not held: the next claim of any worker (this one's too) takes it over after `delivery.claimIdle`.
   */
  async #readHandedOver(): Promise<void> {
    const ids = [...this.#handedOver];
    this.#handedOver.clear();
    const { redis, keys } = this.#deps;
    const stream = keys.deliver(this.channel);
    try {
      // One write for them all (they are on one stream, so one slot in a cluster).
      const replies = (await redis.pipeline(ids.map((id) => ['xrange', stream, id, id])).exec()) ?? [];
      const rows: Array<[string, string[]]> = [];
      for (const [err, found] of replies) {
        if (err) throw err;
        rows.push(...(found as Array<[string, string[]]>));
      }
      await this.#accept(toEntries(rows, true));
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message, count: ids.length }, `cannot read deliveries handed over by another worker; they are taken over after ${this.#deps.config.delivery.claimIdle} ms`);
    }
  }

  #woken(list: string): void {
    this.#wakes += 1;
    // Bounded: a count forgotten only costs its waiter a poll.
    if (this.#lastWake.size >= 10_000) this.#lastWake.clear();
    this.#lastWake.set(list, this.#wakes);
    this.#heads.emit(list);
  }

  /**
   * Resolves true when the head of `list` is settled (SETTLE publishes it) or was since the `asked`-th wake-up,
   * false after `ms` or at the stop.
   * A listener and a timer, each removed by hand: racing `once` and a timer promise, and aborting the loser,
   * made an AbortError with its stack trace at every wait (bench/: 3 % of a worker's CPU with two workers).
   */
  #headSettled(list: string, asked: number, ms: number): Promise<boolean> {
    const stop = this.#controller.signal;
    if (stop.aborted) return Promise.resolve(false);
    if ((this.#lastWake.get(list) ?? 0) > asked) return Promise.resolve(true);
    return new Promise((resolve) => {
      const end = (settled: boolean) => {
        clearTimeout(timer);
        this.#heads.off(list, onSettled);
        stop.removeEventListener('abort', onStop);
        resolve(settled);
      };
      const onSettled = () => end(true);
      const onStop = () => end(false);
      const timer = setTimeout(end, ms, false);
      this.#heads.on(list, onSettled);
      stop.addEventListener('abort', onStop);
    });
  }

  /** Keeps the idle time of what this worker holds low (only what is still pending to it: nothing is taken back from another). */
  async #keepClaimed(stream: string): Promise<void> {
    const ids = [...this.#held.keys()];
    if (ids.length === 0) return;
    this.#keeping = setIdle(this.#deps.redis, stream, this.channel, this.#deps.consumerName, ids, 0).then(
      () => {},
      () => {},
    );
    await this.#keeping;
  }
}

/** Stream entry ids, space-separated, as a worker's wake channel carries for deliveries handed to it (an order list's key never looks like that). */
const ENTRY_IDS = /^\d+-\d+( \d+-\d+)*$/;

/**
 * Stream entry ids (`<ms>-<seq>`) in stream order. Neither part has leading zeros, so a longer part is the
 * larger, and parts of one length compare as text: no numbers or arrays made (this runs for every delivery
 * a worker queues behind others).
 */
export function compareEntryIds(a: string, b: string): number {
  const aDash = a.indexOf('-');
  const bDash = b.indexOf('-');
  return compareDigits(a, 0, aDash, b, 0, bDash) || compareDigits(a, aDash + 1, a.length, b, bDash + 1, b.length);
}

function compareDigits(a: string, aFrom: number, aTo: number, b: string, bFrom: number, bTo: number): number {
  if (aTo - aFrom !== bTo - bFrom) return aTo - aFrom - (bTo - bFrom);
  for (let i = 0; i < aTo - aFrom; i += 1) {
    const d = a.charCodeAt(aFrom + i) - b.charCodeAt(bFrom + i);
    if (d !== 0) return d;
  }
  return 0;
}
