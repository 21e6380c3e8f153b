import type { Redis } from 'ioredis';
import { briefly } from '../redis/connect.ts';

export const HEARTBEAT_MS = 5000;
/** Members silent this long are forgotten (a process that died without saying so). */
const FORGET_MS = 24 * 3600 * 1000;

// Beats are stamped, and read, with Redis's clock: every process then agrees
// on "now", whatever its own wall clock says (one stepped back an hour would
// otherwise look dead, or a dead one alive).
const BEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return now
`;

/**
 * A sign of life kept in Redis: written at start and every HEARTBEAT_MS,
 * removed at stop, and left to lapse when the process dies without stopping.
 */
export class Beacon {
  #timer: NodeJS.Timeout | undefined;
  readonly #write: () => Promise<unknown>;
  readonly #remove: () => Promise<unknown>;

  constructor(write: () => Promise<unknown>, remove: () => Promise<unknown>) {
    this.#write = write;
    this.#remove = remove;
  }

  start(): void {
    const write = () => void this.#write().catch(() => {});
    write();
    this.#timer = setInterval(write, HEARTBEAT_MS).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await briefly(this.#remove());
  }
}

/** A consumer's sign of life in a sorted set (member → last beat, Redis's time), so `hub status` can tell which channels have no live worker. */
export class Heartbeat extends Beacon {
  constructor(redis: Redis, key: string, member: string) {
    super(
      () => redis.eval(BEAT, 1, key, member, FORGET_MS),
      () => redis.zrem(key, member),
    );
  }
}

/** Members that beat within the last three intervals, by Redis's clock. */
export async function aliveMembers(redis: Redis, key: string): Promise<string[]> {
  const [seconds, micros] = await redis.time();
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  return redis.zrangebyscore(key, now - 3 * HEARTBEAT_MS, '+inf');
}
