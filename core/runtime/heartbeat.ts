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

/** A consumer's sign of life in a sorted set (member → last beat, Redis's time), so `hub status` can tell which channels have no live worker. */
export class Heartbeat {
  #timer: NodeJS.Timeout | undefined;
  readonly #redis: Redis;
  readonly #key: string;
  readonly #member: string;

  constructor(redis: Redis, key: string, member: string) {
    this.#redis = redis;
    this.#key = key;
    this.#member = member;
  }

  start(): void {
    const beat = () => void this.#redis.eval(BEAT, 1, this.#key, this.#member, FORGET_MS).catch(() => {});
    beat();
    this.#timer = setInterval(beat, HEARTBEAT_MS).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await briefly(this.#redis.zrem(this.#key, this.#member));
  }
}

/** Members that beat within the last three intervals, by Redis's clock. */
export async function aliveMembers(redis: Redis, key: string): Promise<string[]> {
  const [seconds, micros] = await redis.time();
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  return redis.zrangebyscore(key, now - 3 * HEARTBEAT_MS, '+inf');
}
