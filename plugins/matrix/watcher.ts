/**
 * The matrix channel's watcher: a light `/sync` loop that turns read
 * receipts, reactions and replies into acknowledgements (`ctx.acknowledge`).
 *
 * - It syncs only while some notification awaits an acknowledgement (an
 *   armed escalation): a hub without `escalate` never syncs.
 * - One worker process syncs at a time, under a lease in Redis; another takes
 *   over when the lease runs out (a crashed worker).
 * - Its position (`next_batch`) is kept in Redis (`sync`): a restart carries
 *   on where it stopped, and events are applied before the position moves,
 *   so a crash repeats some (acknowledging is idempotent) and loses none.
 * - The filter keeps it light: the timeline's `m.room.message` and
 *   `m.reaction` events only, with just the fields needed (relations, not
 *   bodies), receipts only among ephemeral events, no state, presence or
 *   account data.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Acknowledgement, ChannelWatcher, PluginContext } from 'notification-hub/plugin-api';
import { retryAfterMs } from './classify-error.ts';
import { MatrixApi } from './client.ts';
import { TtlMap } from './rooms.ts';
import type { MatrixSettings } from './settings.ts';
import { type RoomSignals, syncSignals } from './sync-signals.ts';
import { EventTracker, type Tracked } from './tracking.ts';

/** The inline sync filter (client-server API, "Filtering"). */
export const SYNC_FILTER = JSON.stringify({
  event_fields: ['type', 'event_id', 'sender', 'origin_server_ts', 'content.m\\.relates_to'],
  presence: { not_types: ['*'] },
  account_data: { not_types: ['*'] },
  room: {
    timeline: { limit: 50, types: ['m.room.message', 'm.reaction'] },
    ephemeral: { types: ['m.receipt'] },
    state: { not_types: ['*'] },
    account_data: { not_types: ['*'] },
    include_leave: false,
  },
});

const IDLE_MS = 500;
const PRUNE_MS = 10_000;
const BACKOFF_MS = [1000, 2000, 5000, 10_000, 30_000];

export function createMatrixWatcher(ctx: PluginContext<MatrixSettings>): ChannelWatcher {
  const { settings, redis, logger } = ctx;
  if (!settings.watch || !ctx.acknowledge || !ctx.awaitsAcknowledgement) return { stop: async () => {} };
  const acknowledge = ctx.acknowledge;
  const awaits = ctx.awaitsAcknowledgement;
  const api = new MatrixApi(settings);
  const tracker = new EventTracker(ctx);
  const controller = new AbortController();
  const signal = AbortSignal.any([controller.signal, ctx.signal]);
  const lease = ctx.lease('sync-lease', settings.syncLeaseMs);
  const timestamps = new TtlMap<number>();
  let leader = false;
  let failures = 0;
  let prunedAt = 0;

  async function hold(): Promise<boolean> {
    const was = leader;
    leader = await lease.tryAcquire();
    if (leader && !was) logger.info('matrix watcher: syncing for read receipts, reactions and replies');
    return leader;
  }

  async function release(): Promise<void> {
    if (leader) await lease.release();
    leader = false;
  }

  /** Acknowledge what `tracked` stands for, or forget it when its message no longer waits. */
  async function ack(tracked: Tracked, how: Acknowledgement): Promise<void> {
    if (!(await awaits(tracked.messageId))) return tracker.untrack(tracked);
    await acknowledge(tracked.messageId, how);
    logger.debug({ entry: tracked.messageId, eventId: tracked.eventId, by: how.by, how: how.how }, 'matrix watcher: acknowledged');
  }

  async function tsOf(roomId: string, eventId: string): Promise<number | undefined> {
    const known = timestamps.get(eventId);
    if (known !== undefined) return known;
    try {
      const event = await api.event(roomId, eventId, signal);
      if (typeof event.origin_server_ts === 'number') timestamps.set(eventId, event.origin_server_ts, 3600_000);
      return event.origin_server_ts;
    } catch (err) {
      logger.debug({ roomId, eventId, err: (err as Error).message }, 'matrix watcher: cannot read an event a receipt points at');
      return undefined;
    }
  }

  async function apply(room: RoomSignals): Promise<void> {
    for (const [id, ts] of room.timestamps) timestamps.set(id, ts, 3600_000);
    await tracker.position(room.roomId, room.timeline);
    for (const r of room.relations) {
      const tracked = await tracker.related(room.roomId, r.eventId, r.by, r.how);
      if (tracked) await ack(tracked, { by: r.by, how: r.how });
    }
    for (const r of room.receipts) {
      for (const tracked of await tracker.readUpTo(room.roomId, r.eventId, r.by, r.threadId, (id) => tsOf(room.roomId, id))) {
        await ack(tracked, { by: r.by, how: 'read' });
      }
    }
  }

  async function prune(): Promise<void> {
    prunedAt = Date.now();
    for (const tracked of await tracker.all()) if (!(await awaits(tracked.messageId))) await tracker.untrack(tracked);
  }

  async function syncOnce(): Promise<void> {
    const since = (await redis.get(ctx.key('sync'))) ?? undefined;
    let response;
    try {
      response = await api.sync({ ...(since ? { since } : {}), filter: SYNC_FILTER, timeoutMs: settings.syncTimeoutMs }, signal);
    } catch (err) {
      const e = err as { errcode?: string; httpStatus?: number };
      if (since && e.httpStatus === 400) {
        // A position the server no longer knows (a reset homeserver): start afresh; the first sync brings the current receipts.
        logger.warn({ err: (err as Error).message }, 'matrix watcher: the homeserver refused the saved sync position; syncing afresh');
        await redis.del(ctx.key('sync'));
        return;
      }
      throw err;
    }
    for (const room of syncSignals(response, settings.userId)) await apply(room);
    await redis.set(ctx.key('sync'), response.next_batch);
  }

  async function loop(): Promise<void> {
    while (!signal.aborted) {
      try {
        if (!(await tracker.active())) {
          await release();
          await sleep(IDLE_MS, undefined, { signal });
          continue;
        }
        if (!(await hold())) {
          await sleep(Math.min(2000, settings.syncLeaseMs / 4), undefined, { signal });
          continue;
        }
        if (Date.now() - prunedAt > PRUNE_MS) await prune();
        await syncOnce();
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        const e = err as { errcode?: string; httpStatus?: number; message?: string };
        const wait = e.httpStatus === 429 ? (retryAfterMs(err as never) ?? 5000) : (BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)] ?? 30_000);
        failures += 1;
        const level = e.errcode === 'M_UNKNOWN_TOKEN' || failures > 3 ? 'error' : 'warn';
        logger[level]({ err: e.message, errcode: e.errcode, waitMs: wait }, 'matrix watcher: sync failed; trying again');
        await sleep(wait, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  const running = loop().catch(() => undefined);
  return {
    async stop() {
      controller.abort();
      await running;
      await release();
      api.close();
    },
  };
}
