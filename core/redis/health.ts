import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubConfig } from '../config/schema.ts';
import type { Metrics } from '../metrics.ts';
import { describeTarget, explainRedisError, fatalError, redisTarget } from './connect.ts';
import type { Keys } from './keys.ts';
import { maxmemoryPolicies, missingPermission } from './server-check.ts';

/**
 * The process's one account of its Redis connection: whether Redis answers,
 * and if not, why. It logs each change of state once (reachable → lost →
 * reachable again), not each reconnect attempt, and /readyz gives its reason.
 * The reconnecting itself (backoff up to 5 s) is ioredis's, set in connect.ts.
 *
 * Once Redis answers, and again every `redis.checkInterval`, it checks what
 * the guarantees assume (core/redis/server-check.ts): `maxmemory-policy
 * noeviction`, and a Redis user that may run every command the hub needs.
 * Either failing is an error line, a reason on /readyz and
 * `hub_redis_settings_ok{setting} 0`; a Redis that refuses CONFIG GET (managed
 * Redis) is said once, as a warning, and not held against it.
 */
export class RedisHealth {
  readonly url: string;
  #state: 'connecting' | 'up' | 'down' = 'connecting';
  #reason: string | undefined;
  #since = Date.now();
  #logger: Logger;
  #closing = false;
  /** Settings of the server that break the guarantees, by name (`maxmemory-policy`, `permissions`): a sentence each. */
  readonly #settings = new Map<string, string>();
  #policyUnknownSaid = false;
  #checkTimer: NodeJS.Timeout | undefined;
  #checking = false;
  #deps: { redis: Redis; keys?: Keys; metrics?: Metrics };

  constructor(deps: { redis: Redis; logger: Logger; config: Pick<HubConfig, 'redisUrl'> & { redis?: Partial<HubConfig['redis']> }; keys?: Keys; metrics?: Metrics }) {
    this.url = describeTarget(redisTarget(deps.config));
    this.#logger = deps.logger.child({ component: 'redis' });
    this.#deps = deps;
    const redis = deps.redis;
    if (redis.status === 'ready') this.#up();
    redis.on('ready', () => this.#up());
    // A database the server does not have is a fault of the configuration, which ends the start: not an outage.
    redis.on('error', (err: Error) => {
      if (!fatalError(redis)) this.#down(explainRedisError(err) ?? err.message);
    });
    redis.on('close', () => {
      if (!fatalError(redis)) this.#down();
    });
  }

  /** The process is stopping and closes its connections: that is not an outage. */
  close(): void {
    this.#closing = true;
    clearInterval(this.#checkTimer);
  }

  get up(): boolean {
    return this.#state === 'up';
  }

  /** Why Redis is not usable now, as a sentence; undefined while it answers. */
  get problem(): string | undefined {
    if (this.#state === 'up') return this.#settings.size ? [...this.#settings.values()].join('; ') : undefined;
    return `Redis at ${this.url} is not reachable${this.#reason ? ` (${this.#reason})` : ''}`;
  }

  /** Check the server's settings now (at each connection, then every `redis.checkInterval`); resolves when done. */
  async checkSettings(): Promise<void> {
    const { redis, keys, metrics } = this.#deps;
    if (this.#checking || this.#closing || redis.status !== 'ready') return;
    this.#checking = true;
    try {
      const found = await maxmemoryPolicies(redis);
      if ('unknown' in found) {
        if (!this.#policyUnknownSaid) this.#logger.warn({ err: found.unknown }, `cannot read maxmemory-policy from Redis at ${this.url} (${found.unknown}): make sure it is noeviction, or an evicted stream loses messages without a trace`);
        this.#policyUnknownSaid = true;
      } else {
        const evicting = found.policies.filter((p) => p.policy !== 'noeviction');
        const text = evicting.length
          ? `Redis at ${this.url} evicts keys under memory pressure (maxmemory-policy ${evicting.map((p) => `${p.policy} on ${p.node}`).join(', ')}): messages, deliveries and consumer groups can vanish without a trace; set maxmemory-policy noeviction`
          : undefined;
        this.#setting('maxmemory-policy', text, metrics);
      }
      if (keys) {
        const refused = await missingPermission(redis, keys);
        this.#setting('permissions', refused ? `the Redis user of REDIS_URL may not run a command the hub needs (${refused}); grant the ACL rule of the README's "Redis deployments"` : undefined, metrics);
      }
    } catch {
      // Redis went away during the check: the next connection checks again.
    } finally {
      this.#checking = false;
    }
  }

  #setting(name: string, problem: string | undefined, metrics: Metrics | undefined): void {
    metrics?.redisSettingOk.set({ setting: name }, problem ? 0 : 1);
    const was = this.#settings.get(name);
    if (problem) this.#settings.set(name, problem);
    else this.#settings.delete(name);
    if (problem && problem !== was) this.#logger.error({ setting: name }, problem);
    if (!problem && was) this.#logger.info({ setting: name }, `Redis at ${this.url}: ${name} is as the hub needs it again`);
  }

  /** Start the periodic check (the container's hub processes; a one-shot command has no use for it). */
  watchSettings(intervalMs: number): void {
    clearInterval(this.#checkTimer);
    this.#checkTimer = setInterval(() => void this.checkSettings(), intervalMs).unref();
    void this.checkSettings();
  }

  #up(): void {
    const was = this.#state;
    this.#state = 'up';
    this.#reason = undefined;
    if (this.#checkTimer) void this.checkSettings();
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
