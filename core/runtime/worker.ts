import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubConfig } from '../config/schema.ts';
import type { Metrics } from '../metrics.ts';
import type { BodyFormat, ChannelSender, Delivery, DeliveryReceipt } from '../plugin-api.ts';
import type { Redactor } from '../redactor.ts';
import type { Keys } from '../redis/keys.ts';
import { type StreamEntry, consumeStream } from '../redis/stream-consumer.ts';
import { Heartbeat } from './heartbeat.ts';
import { type DeliveryRecord, type Outcome, OutcomeWriter } from './outcomes.ts';
import { type Failure, type Tries, afterFailure, classifyFailure, deadLetterReason, retryDelay, retryPolicy } from './retry-policy.ts';
import { TargetScheduler } from './target-scheduler.ts';

interface Job {
  entry: string;
  delivery: Delivery;
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
  #outcomes: OutcomeWriter;
  #heartbeat: Heartbeat;
  /** Stop: no more reading, no new attempts, no more waiting between attempts. */
  #controller = new AbortController();
  /** Aborts calls to the peer still running when the grace period is over. */
  #cutoff = new AbortController();
  #reader: Redis | undefined;
  #running: Promise<void> | undefined;
  #refresh: NodeJS.Timeout | undefined;
  /** Per target: the next deliveries known to follow the one this process just made. */
  #cleared = new Map<string, string[]>();

  constructor(deps: WorkerDeps, channel: string, sender: ChannelSender, concurrency: number) {
    this.#deps = deps;
    this.channel = channel;
    this.#sender = sender;
    this.#logger = deps.logger.child({ component: 'worker', channel });
    const capacity = Math.max(concurrency * 8, deps.config.delivery.batchSize * 2);
    this.#scheduler = new TargetScheduler<Job>({
      concurrency,
      capacity,
      // A stuck target counts for little against the read-ahead, so it cannot stall the others…
      perTarget: 8,
      // …while memory stays bounded by all the deliveries held.
      limit: capacity * 8,
      order: (a, b) => compareEntryIds(a.entry, b.entry),
      run: (job) => this.#deliver(job),
    });
    this.#outcomes = new OutcomeWriter({
      redis: deps.redis,
      keys: deps.keys,
      group: channel,
      retentionMs: deps.config.recordRetention,
      eventsMaxLen: deps.config.eventsMaxLen,
    });
    this.#heartbeat = new Heartbeat(deps.redis, deps.keys.workers(channel), deps.consumerName);
  }

  start(): void {
    const { redis, keys, config, consumerName } = this.#deps;
    const stream = keys.deliver(this.channel);
    this.#reader = redis.duplicate();
    this.#heartbeat.start();
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

  /** Stop reading, let deliveries in flight finish (up to `graceMs`), leave the rest pending for another worker. */
  async stop(graceMs = 5000): Promise<void> {
    this.#controller.abort();
    this.#reader?.disconnect();
    await this.#running;
    // Calls to the peer in flight finish and are settled: cutting them would
    // leave deliveries the peer has accepted to be sent again by another worker.
    await Promise.race([this.#scheduler.drained(), sleep(graceMs, undefined, { ref: false })]);
    this.#cutoff.abort();
    await Promise.race([this.#scheduler.drained(), sleep(1000, undefined, { ref: false })]);
    clearInterval(this.#refresh);
    await this.#heartbeat.stop();
    await this.#sender.close?.();
  }

  async #accept(entries: StreamEntry[]): Promise<void> {
    for (const entry of entries) {
      const f = entry.fields;
      const delivery: Delivery = {
        id: f.delivery ?? `${this.#deps.keys.prefix}:${entry.id}`,
        messageId: f.entry ?? entry.id,
        channel: this.channel,
        target: f.target ?? '',
        attempt: 1,
        message: {
          to: (f.to ?? '').split(',').filter(Boolean),
          body: f.body ?? '',
          format: (f.format ?? 'html') as BodyFormat,
          ...(f.subject ? { subject: f.subject } : {}),
          ...(f.id ? { producerId: f.id } : {}),
        },
      };
      const record: DeliveryRecord = { channel: this.channel, target: delivery.target, state: 'retrying', attempts: 0, at: '', history: [] };
      this.#scheduler.push(delivery.target, { entry: entry.id, delivery, fields: f, record });
    }
  }

  async #deliver(job: Job): Promise<void | 'yield'> {
    const { config, metrics } = this.#deps;
    const policy = retryPolicy(config.delivery);
    const shutdown = this.#controller.signal;
    const turn = await this.#awaitTurn(job);
    if (turn !== 'go') return turn === 'yield' ? 'yield' : undefined;
    let tries: Tries = { counted: 0, rateLimitedInARow: 0 };
    while (!shutdown.aborted) {
      job.record.attempts += 1;
      try {
        const receipt = await this.#attempt({ ...job.delivery, attempt: tries.counted + 1 });
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
        void this.#settle(job, 'retrying', failure);
        this.#logger.debug({ target: job.delivery.target, attempt: tries.counted + 1, waitMs: wait, err: failure.message }, 'delivery will be retried');
        await sleep(wait, undefined, { signal: shutdown }).catch(() => {});
      }
    }
  }

  /**
   * One call to the peer, cut at `delivery.timeout` or at the end of a stop's
   * grace. Its timer is cleared when the call ends: `AbortSignal.timeout` would
   * keep every attempt's signal and listeners alive for the whole timeout.
   */
  async #attempt(delivery: Delivery): Promise<DeliveryReceipt> {
    const deadline = new AbortController();
    const cutoff = this.#cutoff.signal;
    const onCutoff = () => deadline.abort(cutoff.reason);
    cutoff.addEventListener('abort', onCutoff, { once: true });
    const timer = setTimeout(() => deadline.abort(new DOMException('the peer did not answer in time', 'TimeoutError')), this.#deps.config.delivery.timeout);
    try {
      return await this.#sender.deliver(delivery, deadline.signal);
    } finally {
      clearTimeout(timer);
      cutoff.removeEventListener('abort', onCutoff);
    }
  }

  /**
   * Per-target order across workers: a delivery goes only when it heads its
   * target's order list, i.e. every older delivery to that target is settled,
   * wherever it was being made. A list read ahead lets the next deliveries of
   * this process through without asking again.
   */
  async #awaitTurn(job: Job): Promise<'go' | 'yield' | 'stop'> {
    const { redis, keys } = this.#deps;
    const target = job.delivery.target;
    const cleared = this.#cleared.get(target);
    if (cleared?.[0] === job.entry) {
      cleared.shift();
      return 'go';
    }
    const key = keys.order(this.channel, target);
    for (let waited = 0; !this.#controller.signal.aborted; waited += 1) {
      try {
        const head = await redis.lrange(key, 0, 31);
        if (head.length === 0 || head[0] === job.entry) {
          this.#cleared.set(target, head.slice(1));
          return 'go';
        }
        if (this.#scheduler.hasOlder(target, job)) return 'yield';
        // Not in the list (routed before it existed): nothing to wait for.
        if (!head.includes(job.entry) && (await redis.lpos(key, job.entry)) === null) return 'go';
        // The head was settled without leaving the list (a purge, a trimmed stream): drop it.
        const stale = (await redis.xrange(keys.deliver(this.channel), head[0]!, head[0]!)).length === 0;
        if (stale) await redis.lrem(key, 1, head[0]!);
        else if (waited % 50 === 10) this.#logger.info({ target, waitingFor: head[0] }, 'an older delivery to this target is still being made elsewhere; waiting for it to keep the order');
      } catch (err) {
        this.#logger.warn({ err: (err as Error).message }, 'cannot read the order of a target; waiting');
      }
      await sleep(100, undefined, { signal: this.#controller.signal }).catch(() => {});
    }
    return 'stop';
  }

  #note(job: Job, result: string, error?: string): void {
    const at = new Date().toISOString();
    job.record.at = at;
    job.record.history.push({ at, result, ...(error ? { error } : {}) });
    if (job.record.history.length > 10) job.record.history.splice(0, job.record.history.length - 10);
  }

  async #settle(job: Job, kind: Outcome['kind'], failure?: Failure, reason?: string): Promise<void> {
    job.record.state = kind;
    if (failure) job.record.error = failure.message;
    const outcome: Outcome = { kind, channel: this.channel, streamEntry: job.entry, deliveryId: job.delivery.id, messageId: job.delivery.messageId, record: { ...job.record } };
    if (kind === 'dead') {
      const { to, subject, body, format, id } = job.fields;
      outcome.deadLetter = {
        to, subject, body, format, id,
        reason: reason ?? failure?.message,
        stage: 'delivery',
        entry: job.delivery.messageId,
        delivery: job.delivery.id,
        channel: this.channel,
        target: job.delivery.target,
        attempts: String(job.record.attempts),
        error: failure ? `${failure.code}: ${failure.message}` : undefined,
        at: job.record.at,
      };
      this.#deps.metrics.deadLetters.inc({ stage: 'delivery' });
      this.#logger.warn({ target: job.delivery.target, entry: job.delivery.messageId, reason: outcome.deadLetter.reason }, 'delivery dead-lettered');
    }
    if (kind !== 'retrying') this.#deps.metrics.deliveries.inc({ channel: this.channel, outcome: kind });
    await this.#outcomes.write(outcome).catch((err: Error) => this.#logger.error({ err: err.message }, 'could not record a delivery outcome'));
  }

  async #keepClaimed(stream: string): Promise<void> {
    const ids = [...new Set(Array.from(this.#scheduler.jobs(), (job) => job.entry))];
    if (ids.length === 0) return;
    await this.#deps.redis.xclaim(stream, this.channel, this.#deps.consumerName, 0, ...ids, 'JUSTID').catch(() => {});
  }
}

/** Stream entry ids (`<ms>-<seq>`) in stream order. */
export function compareEntryIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}
