import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { fromPairs } from './fields.ts';

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
  /** Taken over from a consumer that stopped answering, or read again from this consumer's own pending list (it may have been half done). */
  claimed: boolean;
}

export interface StreamConsumerOptions {
  /** For XAUTOCLAIM and group creation. */
  redis: Redis;
  /** A connection of its own: XREADGROUP BLOCK holds it. */
  reader: Redis;
  stream: string;
  group: string;
  consumer: string;
  batchSize: number;
  blockMs: number;
  /** Entries pending longer than this at another consumer are taken over. */
  claimIdleMs: number;
  /** Take over every pending entry at once, before reading new ones (the consumers before this one are known to be gone). */
  claimAllFirst?: boolean;
  logger: Logger;
  handle(entries: StreamEntry[]): Promise<void>;
  /**
   * Read the next batch while this one is handled (at most two in flight).
   * Only for a `handle` that issues its Redis commands before its first
   * `await`, so that batches still reach Redis in stream order.
   */
  overlap?: boolean;
  /** Resolves when there is room for another batch (backpressure). */
  ready?(): Promise<void>;
}

type RawEntry = [id: string, fields: string[] | null];

/** Redis's slowest backoff here: a consumer is back within this long of Redis answering again. */
const MAX_BACKOFF_MS = 2000;

/**
 * The one consumer loop of the hub, used by ingress and by every channel's
 * workers: read a batch with XREADGROUP, hand it over, and now and then take
 * over the entries a dead consumer left pending (XAUTOCLAIM). Redis faults
 * are waited out with backoff; the loop never exits on its own.
 *
 * What this consumer holds and what Redis lists as pending to it can differ:
 * a reply lost with a cut connection leaves entries in its pending list that
 * it never saw, and a batch whose handling failed is pending but dropped.
 * Whenever that may be so — at start, after a reconnect of either
 * connection, after a failed batch — it reads its own pending list again
 * (XREADGROUP from id 0) before anything new, so that those entries go
 * first, in stream order, at once rather than after `claimIdleMs`. `handle`
 * must therefore take an entry it already holds as a no-op.
 *
 * Claim timing uses the monotonic clock: a wall clock stepped back must not
 * stop the takeovers.
 */
/**
 * Whether `ready` settles within `ms` (false when the time runs out or `signal`
 * aborts), leaving no timer and no listener behind: this runs once per batch,
 * and a sleep bound to the long-lived `signal` would leave its abort listener
 * there until its timer fired, thousands of them under load, each making the
 * next addEventListener slower (16 % of a worker's CPU at 1,000 messages/s).
 */
function readyWithin(ready: Promise<void>, ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const finish = (value: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', quit);
      resolve(value);
    };
    const quit = () => finish(false);
    const timer = setTimeout(quit, ms);
    signal.addEventListener('abort', quit, { once: true });
    ready.then(() => finish(true), quit);
  });
}

export async function consumeStream(options: StreamConsumerOptions, signal: AbortSignal): Promise<void> {
  const { redis, reader, stream, group, consumer, logger, batchSize } = options;
  let claimCursor = '0-0';
  let nextClaimAt = 0;
  let failures = 0;
  let groupReady = false;
  let minIdle = options.claimAllFirst ? 0 : options.claimIdleMs;
  // With `overlap`: the batch being handled, and how it failed (raised before the next batch is handed over).
  let handling: Promise<void> = Promise.resolve();
  let busy = false;
  let failed: Error | undefined;
  // One log line when consuming fails, one when it works again (a batch handled, or nothing to handle).
  const recovered = () => {
    if (failures > 0) logger.info({ stream }, 'Redis answers again; consuming');
    failures = 0;
  };
  // Where to go on reading this consumer's own pending list; undefined once it has been read to its end.
  let own: string | undefined = '0';
  // Bumped whenever the pending list may hold what this consumer does not: a read started before is not trusted.
  let epoch = 0;
  const readOwnAgain = () => {
    epoch += 1;
    own = '0';
  };
  reader.on('ready', readOwnAgain);
  redis.on('ready', readOwnAgain);

  try {
    while (!signal.aborted) {
      try {
        if (!groupReady) groupReady = await ensureGroup(redis, stream, group);
        let entries: StreamEntry[] = [];
        if (performance.now() >= nextClaimAt) {
          const [cursor, raw] = (await redis.xautoclaim(stream, group, consumer, minIdle, claimCursor, 'COUNT', batchSize)) as [string, RawEntry[]];
          claimCursor = cursor;
          entries = toEntries(raw, true);
          if (cursor === '0-0') {
            nextClaimAt = performance.now() + Math.max(1000, options.claimIdleMs / 2);
            minIdle = options.claimIdleMs;
          }
          if (entries.length) logger.info({ stream, count: entries.length }, 'took over entries left pending by a stopped consumer');
        }
        if (entries.length === 0 && own !== undefined) {
          const seen = epoch;
          const reply = (await reader.xreadgroup('GROUP', group, consumer, 'COUNT', batchSize, 'STREAMS', stream, own)) as [string, RawEntry[]][] | null;
          const raw = reply?.[0]?.[1] ?? [];
          if (seen === epoch) own = raw.length < batchSize ? undefined : raw.at(-1)![0];
          entries = toEntries(raw, true);
          if (entries.length) logger.debug({ stream, count: entries.length }, 'read its own pending entries again');
        }
        if (entries.length === 0 && own === undefined) {
          // Backpressure holds back new entries only: taking over a dead
          // consumer's entries goes on, since the deliveries held here may be
          // waiting for exactly those (per-target order).
          if (options.ready) {
            if (!(await readyWithin(options.ready(), Math.max(0, nextClaimAt - performance.now()) + 10, signal))) continue;
          }
          const seen = epoch;
          const reply = (await reader.xreadgroup('GROUP', group, consumer, 'COUNT', batchSize, 'BLOCK', options.blockMs, 'STREAMS', stream, '>')) as
            | [string, RawEntry[]][]
            | null;
          // A reconnect meanwhile: an earlier reply may have been lost, and these
          // newer entries must not go before it. The pending list has both.
          if (seen !== epoch) continue;
          entries = toEntries(reply?.[0]?.[1] ?? [], false);
          if (entries.length === 0 && !busy) recovered();
        }
        if (entries.length === 0) continue;
        if (!options.overlap) {
          await options.handle(entries);
          recovered();
          continue;
        }
        await handling;
        if (failed) {
          // This batch is pending too: both are read again, in order, from the pending list.
          const error = failed;
          failed = undefined;
          throw error;
        }
        busy = true;
        handling = options.handle(entries).then(
          () => {
            busy = false;
            recovered();
          },
          (err: Error) => {
            busy = false;
            failed = err;
            readOwnAgain();
          },
        );
      } catch (err) {
        if (signal.aborted) break;
        const message = (err as Error).message;
        if (message.includes('NOGROUP')) groupReady = false;
        // Whatever was read and not handled is pending to this consumer: it goes before anything new.
        readOwnAgain();
        failures += 1;
        const wait = Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(failures, 5));
        (failures === 1 ? logger.error.bind(logger) : logger.debug.bind(logger))({ stream, err: message, retryInMs: wait }, 'cannot consume the stream; retrying');
        await sleep(wait, undefined, { signal }).catch(() => {});
      }
    }
    await handling;
  } finally {
    reader.off('ready', readOwnAgain);
    redis.off('ready', readOwnAgain);
  }
}

/** Create the consumer group from the start of the stream, so entries written before the first consumer ran are not skipped. */
export async function ensureGroup(redis: Redis, stream: string, group: string): Promise<true> {
  try {
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
  } catch (err) {
    if (!(err as Error).message.includes('BUSYGROUP')) throw err;
  }
  return true;
}

/** Entries as XREADGROUP, XAUTOCLAIM and XRANGE answer them; one deleted since (no fields) is left out. */
export function toEntries(raw: RawEntry[], claimed: boolean): StreamEntry[] {
  const entries: StreamEntry[] = [];
  for (const [id, list] of raw) {
    if (list) entries.push({ id, fields: fromPairs(list), claimed });
  }
  return entries;
}
