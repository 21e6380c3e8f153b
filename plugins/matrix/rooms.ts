/**
 * Target → room id. Room ids are used as they are; aliases are resolved
 * through the room directory; a user id gets a direct room, made once and
 * recorded in the bot's `m.direct` account data. Answers are cached in
 * Redis (shared by every worker) and, briefly, in memory (no round trip on
 * the send path).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError, RetryableError, type PluginContext } from 'notification-hub/plugin-api';
import type { MatrixApi } from './client.ts';
import type { MatrixSettings } from './settings.ts';
import { kindOf } from './targets.ts';

const ALIAS_TTL_MS = 60 * 60_000;
const DM_TTL_MS = 24 * 60 * 60_000;
const MEMORY_TTL_MS = 60_000;
const LOCK_TTL_MS = 30_000;
const LOCK_WAIT_MS = 15_000;

/** A small in-process map whose entries expire. */
export class TtlMap<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  private readonly max: number;
  constructor(max = 10_000) {
    this.max = max;
  }
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.until > Date.now()) return entry.value;
    if (entry) this.entries.delete(key);
    return undefined;
  }
  set(key: string, value: V, ttlMs: number): void {
    if (ttlMs <= 0) return;
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, { value, until: Date.now() + ttlMs });
  }
  delete(key: string): void {
    this.entries.delete(key);
  }
}

export class RoomResolver {
  private readonly api: MatrixApi;
  private readonly ctx: PluginContext<MatrixSettings>;
  private readonly memory = new TtlMap<string>();

  constructor(api: MatrixApi, ctx: PluginContext<MatrixSettings>) {
    this.api = api;
    this.ctx = ctx;
  }

  async roomFor(target: string, signal: AbortSignal): Promise<string> {
    const kind = kindOf(target);
    if (kind === 'room') return target;
    const remembered = this.memory.get(target);
    if (remembered) return remembered;
    const key = this.ctx.key(kind === 'alias' ? 'alias' : 'dm', target);
    const roomId = (await this.ctx.redis.get(key))
      ?? (kind === 'alias' ? await this.resolveAlias(target, key, signal) : await this.directRoom(target, key, signal));
    this.memory.set(target, roomId, MEMORY_TTL_MS);
    return roomId;
  }

  /** Forget what `target` resolved to, so that the next delivery looks again (an alias may have moved). */
  async forget(target: string): Promise<void> {
    this.memory.delete(target);
    if (kindOf(target) === 'alias') await this.ctx.redis.del(this.ctx.key('alias', target));
  }

  private async resolveAlias(alias: string, key: string, signal: AbortSignal): Promise<string> {
    let roomId: string;
    try {
      roomId = await this.api.resolveAlias(alias, signal);
    } catch (err) {
      if ((err as { errcode?: string }).errcode !== 'M_NOT_FOUND') throw err;
      throw new PermanentError(`room alias ${alias} does not exist on its homeserver`, { code: 'M_NOT_FOUND', cause: err });
    }
    await this.ctx.redis.set(key, roomId, 'PX', ALIAS_TTL_MS);
    return roomId;
  }

  /**
   * The direct room with `userId`: from `m.direct`, or made now. Creation
   * runs under one lease per bot (`ctx.lease`), because `m.direct` is
   * read-modified-written and two workers must not make two rooms. A room
   * made whose `m.direct` update failed is kept in `dm-pending` and reused.
   */
  private async directRoom(userId: string, key: string, signal: AbortSignal): Promise<string> {
    const { redis } = this.ctx;
    const known = (await this.api.directRooms(signal))[userId]?.[0];
    if (known) return this.remember(key, known);
    const lock = this.ctx.lease('dm-lock', LOCK_TTL_MS);
    const deadline = Date.now() + LOCK_WAIT_MS;
    while (!(await lock.tryAcquire())) {
      const made = await redis.get(key);
      if (made) return made;
      if (Date.now() > deadline) {
        throw new RetryableError(`another worker has been creating a direct room for ${userId} for too long`, { code: 'dm_lock' });
      }
      await sleep(50, undefined, { signal });
    }
    try {
      const direct = await this.api.directRooms(signal);
      const existing = direct[userId]?.[0];
      if (existing) return await this.remember(key, existing);
      const pendingKey = this.ctx.key('dm-pending');
      const roomId = (await redis.hget(pendingKey, userId)) ?? (await this.api.createDirectRoom(userId, signal));
      await redis.hset(pendingKey, userId, roomId);
      await this.api.setDirectRooms({ ...direct, [userId]: [...(direct[userId] ?? []), roomId] }, signal);
      await redis.hdel(pendingKey, userId);
      this.ctx.logger.info({ userId, roomId }, 'matrix: created a direct room');
      return await this.remember(key, roomId);
    } finally {
      await lock.release();
    }
  }

  private async remember(key: string, roomId: string): Promise<string> {
    await this.ctx.redis.set(key, roomId, 'PX', DM_TTL_MS);
    return roomId;
  }
}
