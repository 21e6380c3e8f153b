import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { briefly } from '../redis/connect.ts';

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * One active hub at a time. Two hubs routing at once would interleave their
 * batches and break the order of deliveries to a target; with a lease the
 * others wait on standby and take over within `ttlMs` when the active one
 * stops or dies.
 */
export class Lease {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #owner: string;
  readonly #ttlMs: number;

  constructor(redis: Redis, key: string, owner: string, ttlMs = 2000) {
    this.#redis = redis;
    this.#key = key;
    this.#owner = owner;
    this.#ttlMs = ttlMs;
  }

  /** Wait until this process holds the lease (or `signal` aborts). */
  async acquire(signal: AbortSignal, onStandby: () => void): Promise<boolean> {
    let told = false;
    while (!signal.aborted) {
      const taken = await this.#redis.set(this.#key, this.#owner, 'PX', this.#ttlMs, 'NX').catch(() => null);
      if (taken) return true;
      if (!told) onStandby();
      told = true;
      await sleep(this.#ttlMs / 5, undefined, { signal }).catch(() => {});
    }
    return false;
  }

  /** Keep the lease while `signal` is live; `onLost` when another process has it (e.g. after Redis lost it). */
  hold(signal: AbortSignal, onLost: () => void): void {
    let inFlight = false;
    const timer = setInterval(async () => {
      if (inFlight) return;
      inFlight = true;
      const kept = await this.#redis.eval(RENEW, 1, this.#key, this.#owner, this.#ttlMs).catch(() => 1);
      inFlight = false;
      if (kept === 0) {
        clearInterval(timer);
        onLost();
      }
    }, this.#ttlMs / 3);
    signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }

  async release(): Promise<void> {
    await briefly(this.#redis.eval(RELEASE, 1, this.#key, this.#owner));
  }
}
