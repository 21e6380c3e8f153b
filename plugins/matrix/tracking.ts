/**
 * What the matrix channel remembers, in Redis under its own keys, to turn
 * read receipts, reactions and replies back into acknowledgements of hub
 * messages:
 *
 * - `ev:<eventId>` → the message id (and room, send time) of a notification
 *   event whose message awaits an acknowledgement; `tracked:<room>` those
 *   events of a room (sorted by send time); `rooms` the rooms that have any.
 * - `pos:<room>` → the position of each timeline event in the order the
 *   bot's sync saw them (`seq:<room>` counts). A receipt says "read up to
 *   here": it covers a tracked event when that event's position is at or
 *   before the receipt's event. Sync order is the homeserver's own stream
 *   order, which is what a reader's client shows, and it does not depend on
 *   clocks; `origin_server_ts` is the sending server's clock, which skews
 *   across federation and can disagree with the order events arrived in.
 *   It is only the fallback, for an event the bot's light sync never
 *   positioned (a type its filter leaves out, a gap of a `limited` timeline).
 * - `read:<room>` → per reader, the furthest position read; `rel:<eventId>`
 *   → reactions and replies to an event not (yet) tracked. Both close the
 *   race of a person reading faster than the sender records its event: the
 *   sender records first and looks at them second, the watcher writes them
 *   first and looks at what is tracked second, so one of the two sees the
 *   other.
 */
import type { Acknowledgement, PluginContext } from 'notification-hub/plugin-api';
import type { MatrixSettings } from './settings.ts';

export interface Tracked {
  eventId: string;
  messageId: string;
  roomId: string;
}

/** Remembered events and positions expire; escalations end long before. */
const TTL_MS = 30 * 24 * 3600_000;
const RELATION_TTL_MS = 3600_000;
/** Positions kept per room: receipts for events older than these fall back to timestamps. */
const POSITIONS = 5000;

/** KEYS: pos zset, seq counter. ARGV: ttl ms, kept, event ids. Gives each new event the next position. */
const POSITION = `
local kept = tonumber(ARGV[2])
for i = 3, #ARGV do
  if not redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[i])
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -kept - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
`;

/** KEYS: read hash. ARGV: user, position, ttl ms. Keeps the furthest position each user read. */
const READ_MARK = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or tonumber(current) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

type Ack = (tracked: Tracked, ack: Acknowledgement) => Promise<void>;

export class EventTracker {
  private readonly ctx: PluginContext<MatrixSettings>;

  constructor(ctx: PluginContext<MatrixSettings>) {
    this.ctx = ctx;
  }

  private k(...parts: string[]): string {
    return this.ctx.key(...parts);
  }

  /**
   * The sender: `eventId` in `roomId` carries `messageId`, which awaits an
   * acknowledgement. Then any sign that came before this was recorded.
   */
  async track(roomId: string, eventId: string, messageId: string, ack: Ack): Promise<void> {
    const { redis } = this.ctx;
    const now = Date.now();
    await redis
      .multi()
      .hset(this.k('ev', eventId), { msg: messageId, room: roomId, ts: now })
      .pexpire(this.k('ev', eventId), TTL_MS)
      .zadd(this.k('tracked', roomId), now, eventId)
      .zremrangebyscore(this.k('tracked', roomId), '-inf', now - TTL_MS)
      .pexpire(this.k('tracked', roomId), TTL_MS)
      .sadd(this.k('rooms'), roomId)
      .exec();
    const [position, readers, relations] = await Promise.all([
      redis.zscore(this.k('pos', roomId), eventId),
      redis.hgetall(this.k('read', roomId)),
      redis.hgetall(this.k('rel', eventId)),
    ]);
    const tracked = { eventId, messageId, roomId };
    if (position !== null) {
      for (const [user, upTo] of Object.entries(readers)) if (Number(upTo) >= Number(position)) await ack(tracked, { by: user, how: 'read' });
    }
    for (const [user, how] of Object.entries(relations)) await ack(tracked, { by: user, how: how as Acknowledgement['how'] });
  }

  /** The watcher: timeline events in the order its sync saw them. */
  async position(roomId: string, eventIds: string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await this.ctx.redis.eval(POSITION, 2, this.k('pos', roomId), this.k('seq', roomId), TTL_MS, POSITIONS, ...eventIds);
  }

  /**
   * The tracked events a receipt of `userId` for `eventId` covers: that event
   * and every tracked one before it. A receipt scoped to a thread other than
   * the main timeline covers only its own event. `tsOf` gives an event's
   * `origin_server_ts` for the fallback.
   */
  async readUpTo(roomId: string, eventId: string, userId: string, threadId: string | undefined, tsOf: (eventId: string) => Promise<number | undefined>): Promise<Tracked[]> {
    const { redis } = this.ctx;
    const main = threadId === undefined || threadId === 'main';
    const receiptPosition = await redis.zscore(this.k('pos', roomId), eventId);
    if (receiptPosition !== null && main) await redis.eval(READ_MARK, 1, this.k('read', roomId), userId, receiptPosition, TTL_MS);
    const ids = await redis.zrange(this.k('tracked', roomId), 0, -1, 'WITHSCORES');
    const covered: string[] = [];
    let receiptTs: number | undefined | null = null;
    for (let i = 0; i + 1 < ids.length; i += 2) {
      const [id, sentAt] = [ids[i]!, Number(ids[i + 1])];
      if (id === eventId) {
        covered.push(id);
        continue;
      }
      if (!main) continue;
      const position = receiptPosition === null ? null : await redis.zscore(this.k('pos', roomId), id);
      if (receiptPosition !== null && position !== null) {
        if (Number(position) <= Number(receiptPosition)) covered.push(id);
        continue;
      }
      receiptTs ??= await tsOf(eventId);
      const ts = (await tsOf(id)) ?? sentAt;
      if (receiptTs !== undefined && ts <= receiptTs) covered.push(id);
    }
    return this.resolve(roomId, covered);
  }

  /** The tracked event a reaction or reply points at; an untracked one is remembered a while (it may be tracked in a moment). */
  async related(roomId: string, eventId: string, userId: string, how: Acknowledgement['how']): Promise<Tracked | undefined> {
    const { redis } = this.ctx;
    await redis.multi().hset(this.k('rel', eventId), userId, how).pexpire(this.k('rel', eventId), RELATION_TTL_MS).exec();
    const [tracked] = await this.resolve(roomId, [eventId]);
    if (tracked) await redis.del(this.k('rel', eventId));
    return tracked;
  }

  /** Events whose message no longer awaits anything: forgotten. */
  async untrack(tracked: Tracked): Promise<void> {
    await this.ctx.redis.multi().zrem(this.k('tracked', tracked.roomId), tracked.eventId).del(this.k('ev', tracked.eventId)).exec();
  }

  /** Whether any event is tracked at all (the watcher syncs only then). */
  async active(): Promise<boolean> {
    return (await this.ctx.redis.scard(this.k('rooms'))) > 0;
  }

  /** Every tracked event, room by room; rooms left with none are dropped from `rooms`. */
  async all(): Promise<Tracked[]> {
    const { redis } = this.ctx;
    const out: Tracked[] = [];
    for (const roomId of await redis.smembers(this.k('rooms'))) {
      const ids = await redis.zrange(this.k('tracked', roomId), 0, -1);
      if (ids.length === 0) {
        // Tracked again in the meantime? Then the sender re-added the room after this read; put it back.
        await redis.srem(this.k('rooms'), roomId);
        if ((await redis.zcard(this.k('tracked', roomId))) > 0) await redis.sadd(this.k('rooms'), roomId);
        continue;
      }
      out.push(...(await this.resolve(roomId, ids)));
    }
    return out;
  }

  private async resolve(roomId: string, eventIds: string[]): Promise<Tracked[]> {
    if (eventIds.length === 0) return [];
    const pipeline = this.ctx.redis.pipeline();
    for (const id of eventIds) pipeline.hget(this.k('ev', id), 'msg');
    const results = (await pipeline.exec()) ?? [];
    const out: Tracked[] = [];
    for (const [i, [err, messageId]] of results.entries()) {
      if (err) throw err;
      if (typeof messageId === 'string') out.push({ eventId: eventIds[i]!, messageId, roomId });
      else await this.ctx.redis.zrem(this.k('tracked', roomId), eventIds[i]!); // expired
    }
    return out;
  }
}
