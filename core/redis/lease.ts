import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { briefly } from './connect.ts';

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
// Free, or still this process's own (it let go after a Redis outage): taken.
const TAKE = `
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if owner then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * One holder at a time of something shared by processes: the active hub (two
 * hubs routing at once would interleave their batches and break the order of
 * deliveries to a target), a plugin's sync loop or lock (through
 * `PluginContext.lease`). The others wait and take over within `ttlMs` when
 * the holder stops or dies. Its expiry is Redis's and its renewals are timed
 * by the monotonic clock: no wall clock is involved.
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

  /** Take it when free, or renew it when this holder has it: one round trip; true when held. */
  async tryAcquire(): Promise<boolean> {
    return (await this.#redis.eval(TAKE, 1, this.#key, this.#owner, this.#ttlMs)) === 1;
  }

  /** Wait until this holder has it (true), or `signal` aborts (false); `onStandby` once, when the first try finds it held. */
  async acquire(signal: AbortSignal, onStandby?: () => void): Promise<boolean> {
    let told = false;
    while (!signal.aborted) {
      if (await this.tryAcquire().catch(() => false)) return true;
      if (!told) onStandby?.();
      told = true;
      await sleep(this.#ttlMs / 5, undefined, { signal }).catch(() => {});
    }
    return false;
  }

  /**
   * Keep it while `signal` is live; `onLost` when another holder has it, or
   * when no renewal went through for a whole `ttlMs` (Redis may have let it
   * expire and given it to another process meanwhile).
   */
  hold(signal: AbortSignal, onLost: () => void): void {
    let inFlight = false;
    let renewedAt = performance.now();
    let held = true;
    const lose = () => {
      if (!held) return;
      held = false;
      clearInterval(timer);
      onLost();
    };
    const timer = setInterval(async () => {
      if (performance.now() - renewedAt >= this.#ttlMs) return lose();
      if (inFlight) return;
      inFlight = true;
      const asked = performance.now();
      const kept = await this.#redis.eval(RENEW, 1, this.#key, this.#owner, this.#ttlMs).catch(() => undefined);
      inFlight = false;
      if (kept === 1) renewedAt = asked;
      else if (kept === 0) lose();
    }, this.#ttlMs / 3);
    signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }

  async release(): Promise<void> {
    await briefly(this.#redis.eval(RELEASE, 1, this.#key, this.#owner));
  }
}
