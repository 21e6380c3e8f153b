import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { displayRedisUrl, fatalError } from './connect.ts';

/**
 * The process's one account of its Redis connection: whether Redis answers,
 * and if not, why. It logs each change of state once (reachable → lost →
 * reachable again), not each reconnect attempt, and /readyz gives its reason.
 * The reconnecting itself (backoff up to 5 s) is ioredis's, set in connect.ts.
 */
export class RedisHealth {
  readonly url: string;
  #state: 'connecting' | 'up' | 'down' = 'connecting';
  #reason: string | undefined;
  #since = Date.now();
  #logger: Logger;
  #closing = false;

  constructor(deps: { redis: Redis; logger: Logger; config: { redisUrl: string } }) {
    this.url = displayRedisUrl(deps.config.redisUrl);
    this.#logger = deps.logger.child({ component: 'redis' });
    const redis = deps.redis;
    if (redis.status === 'ready') this.#state = 'up';
    redis.on('ready', () => this.#up());
    // A database the server does not have is a fault of the configuration, which ends the start: not an outage.
    redis.on('error', (err: Error) => {
      if (!fatalError(redis)) this.#down(err.message);
    });
    redis.on('close', () => {
      if (!fatalError(redis)) this.#down();
    });
  }

  /** The process is stopping and closes its connections: that is not an outage. */
  close(): void {
    this.#closing = true;
  }

  get up(): boolean {
    return this.#state === 'up';
  }

  /** Why Redis is not usable now, as a sentence; undefined while it answers. */
  get problem(): string | undefined {
    if (this.#state === 'up') return undefined;
    return `Redis at ${this.url} is not reachable${this.#reason ? ` (${this.#reason})` : ''}`;
  }

  #up(): void {
    const was = this.#state;
    this.#state = 'up';
    this.#reason = undefined;
    if (was === 'up') return;
    const downMs = Date.now() - this.#since;
    this.#since = Date.now();
    if (was === 'connecting') this.#logger.info({ url: this.url }, `connected to Redis at ${this.url}`);
    else this.#logger.info({ url: this.url, downMs }, `Redis at ${this.url} answers again, after ${Math.round(downMs / 100) / 10} s`);
  }

  /** `reason` is the latest error; a close without one keeps the reason known so far. */
  #down(reason?: string): void {
    if (reason) this.#reason = reason;
    if (this.#state === 'down' || this.#closing) return;
    const was = this.#state;
    this.#state = 'down';
    this.#reason ??= 'the connection was closed';
    this.#since = Date.now();
    const what = was === 'connecting' ? `Redis at ${this.url} is not reachable` : `lost Redis at ${this.url}`;
    this.#logger.error({ url: this.url, err: this.#reason }, `${what} (${this.#reason}); retrying with backoff, and logging again when it answers`);
  }
}
