import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { fromPairs } from './fields.ts';

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
  /** Taken over from a consumer that stopped answering (it may have been half done). */
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

/**
 * The one consumer loop of the hub, used by ingress and by every channel's
 * workers: read a batch with XREADGROUP, hand it over, and now and then take
 * over the entries a dead consumer left pending (XAUTOCLAIM). Redis faults
 * are waited out with backoff; the loop never exits on its own.
 */
export async function consumeStream(options: StreamConsumerOptions, signal: AbortSignal): Promise<void> {
  const { redis, reader, stream, group, consumer, logger } = options;
  let claimCursor = '0-0';
  let nextClaimAt = 0;
  let failures = 0;
  let groupReady = false;
  let handling: Promise<void> = Promise.resolve();
  let minIdle = options.claimAllFirst ? 0 : options.claimIdleMs;

  while (!signal.aborted) {
    try {
      if (!groupReady) groupReady = await ensureGroup(redis, stream, group);
      let entries: StreamEntry[] = [];
      if (Date.now() >= nextClaimAt) {
        const [cursor, raw] = (await redis.xautoclaim(stream, group, consumer, minIdle, claimCursor, 'COUNT', options.batchSize)) as [string, RawEntry[]];
        claimCursor = cursor;
        entries = toEntries(raw, true);
        if (cursor === '0-0') {
          nextClaimAt = Date.now() + Math.max(1000, options.claimIdleMs / 2);
          minIdle = options.claimIdleMs;
        }
        if (entries.length) logger.info({ stream, count: entries.length }, 'took over entries left pending by a stopped consumer');
      }
      if (entries.length === 0) {
        // Backpressure holds back new entries only: taking over a dead
        // consumer's entries goes on, since the deliveries held here may be
        // waiting for exactly those (per-target order).
        if (options.ready) {
          const room = await Promise.race([options.ready().then(() => true), sleep(Math.max(0, nextClaimAt - Date.now()) + 10, false, { signal })]);
          if (!room) continue;
        }
        const reply = (await reader.xreadgroup('GROUP', group, consumer, 'COUNT', options.batchSize, 'BLOCK', options.blockMs, 'STREAMS', stream, '>')) as
          | [string, RawEntry[]][]
          | null;
        entries = toEntries(reply?.[0]?.[1] ?? [], false);
      }
      if (failures > 0) logger.info({ stream }, 'Redis answers again; consuming');
      failures = 0;
      if (entries.length && !options.overlap) await options.handle(entries);
      else if (entries.length) {
        await handling;
        // A failed batch stays pending and is taken over again after claimIdle.
        handling = options.handle(entries).catch((err: Error) => logger.error({ stream, err: err.message }, 'a batch failed; it will be taken over again'));
      }
    } catch (err) {
      if (signal.aborted) break;
      const message = (err as Error).message;
      if (message.includes('NOGROUP')) groupReady = false;
      failures += 1;
      const wait = Math.min(5000, 100 * 2 ** Math.min(failures, 6));
      (failures === 1 ? logger.error.bind(logger) : logger.debug.bind(logger))({ stream, err: message, retryInMs: wait }, 'cannot consume the stream; retrying');
      await sleep(wait, undefined, { signal }).catch(() => {});
    }
  }
  await handling;
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

function toEntries(raw: RawEntry[], claimed: boolean): StreamEntry[] {
  const entries: StreamEntry[] = [];
  for (const [id, list] of raw) {
    if (list) entries.push({ id, fields: fromPairs(list), claimed });
  }
  return entries;
}
