import type { Redis } from 'ioredis';
import { briefly } from '../redis/connect.ts';

export const HEARTBEAT_MS = 5000;

/** A consumer's sign of life in a sorted set (member → last beat), so `hub status` can tell which channels have no live worker. */
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
    const beat = () => void this.#redis.zadd(this.#key, Date.now(), this.#member).catch(() => {});
    beat();
    this.#timer = setInterval(beat, HEARTBEAT_MS).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await briefly(this.#redis.zrem(this.#key, this.#member));
  }
}

/** Members that beat within the last three intervals. */
export async function aliveMembers(redis: Redis, key: string): Promise<string[]> {
  return redis.zrangebyscore(key, Date.now() - 3 * HEARTBEAT_MS, '+inf');
}
