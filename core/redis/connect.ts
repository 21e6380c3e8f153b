import { Redis, type RedisOptions } from 'ioredis';
import { HubError } from '../errors.ts';

/** Lua scripts by command name (`route` → `redis.route(...)`), each feature's own; the composition root registers them. */
export type Scripts = Readonly<Record<string, string>>;

/** How long a connection may stay accepted by the server without answering before it is dropped and tried again. */
export const ANSWER_TIMEOUT_MS = 5000;

/** Why a connection can never work (a database the server does not have): known only once the server answered. */
const fatalErrors = new WeakMap<Redis, HubError>();

/**
 * A connection for a long-running process: commands wait through a Redis
 * restart instead of failing (nothing is dropped while Redis is away), and
 * reconnection never gives up. The command line asks for `failFast`, so that
 * it says "Redis is not reachable" instead of waiting. `scripts` are loaded on
 * first use (EVALSHA), on this connection and its duplicates.
 */
export function connectRedis(url: string, options: { name: string; failFast?: boolean; scripts?: Scripts }): Redis {
  const redis = new Redis(url, {
    connectionName: options.name,
    maxRetriesPerRequest: options.failFast ? 1 : null,
    enableOfflineQueue: true,
    lazyConnect: false,
    retryStrategy: (times) => (options.failFast && times > 2 ? null : Math.min(times * 200, 5000)),
    scripts: Object.fromEntries(Object.entries(options.scripts ?? {}).map(([name, lua]) => [name, { lua }])),
  });
  guard(redis, url);
  return redis;
}

/** A second connection with the same settings (for a blocking read) or some changed, guarded like the first. */
export function duplicateConnection(redis: Redis, name: string, overrides: Partial<RedisOptions> = {}): Redis {
  const copy = redis.duplicate({ ...overrides, connectionName: name });
  guard(copy, `redis://${redis.options.host}:${redis.options.port}/${redis.options.db ?? 0}`);
  return copy;
}

/**
 * Resolves once the connection is ready; rejects with a sentence when it never
 * will (fail-fast connections out of retries, a database the server does not
 * have) or when `signal` aborts.
 */
export async function whenReady(redis: Redis, signal?: AbortSignal): Promise<void> {
  const fatal = fatalErrors.get(redis);
  if (fatal) throw fatal;
  if (redis.status === 'ready') return;
  signal?.throwIfAborted();
  let lastError: Error | undefined;
  let cleanup = () => {};
  try {
    await new Promise<void>((resolve, reject) => {
      // Not events.once: it would reject on the first 'error', which here is only a failed attempt.
      const onError = (err: Error) => (lastError = err);
      const onFatal = (err: HubError) => reject(err);
      const onEnd = () => reject(fatalErrors.get(redis) ?? lastError ?? new Error('the connection was closed'));
      const onAbort = () => reject(signal!.reason);
      redis.on('error', onError).once('ready', resolve).once('fatal', onFatal).once('end', onEnd);
      signal?.addEventListener('abort', onAbort, { once: true });
      cleanup = () => {
        redis.off('error', onError).off('ready', resolve).off('fatal', onFatal).off('end', onEnd);
        signal?.removeEventListener('abort', onAbort);
      };
    });
  } finally {
    cleanup();
  }
}

/**
 * A clean-up command of a stop (a heartbeat removed, a lease released): given
 * up after `ms` rather than holding the stop while Redis is away (what it
 * would remove expires by itself).
 */
export async function briefly(command: Promise<unknown>, ms = 1000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([command.catch(() => {}), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Why this connection can never work (a database the server does not have), once the server said so. */
export function fatalError(redis: Redis): HubError | undefined {
  return fatalErrors.get(redis);
}

/** The URL as logs may show it: the password replaced by `***`. */
export function displayRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.href;
  } catch {
    return 'an invalid Redis URL';
  }
}

/**
 * Every connection gets this: errors are listened to (without a listener
 * ioredis prints each reconnect attempt's stack on stderr; the process's one
 * account of Redis is core/redis/health.ts), a server that accepts but never
 * answers is dropped and tried again, and a database the server does not have
 * closes the connection for good instead of silently using database 0.
 */
function guard(redis: Redis, url: string): void {
  let stall: NodeJS.Timeout | undefined;
  redis.on('error', (err: Error) => {
    if (!/DB index is out of range/i.test(err.message) || fatalErrors.has(redis)) return;
    const db = redis.options.db ?? 0;
    fatalErrors.set(
      redis,
      new HubError(
        'HUB_ERR_CONFIG',
        `REDIS_URL names database ${db}, which the Redis at ${displayRedisUrl(url)} does not have (${err.message}); use a database number below its "databases" setting (16 by default)`,
      ),
    );
    redis.emit('fatal', fatalErrors.get(redis));
    redis.disconnect();
  });
  redis.on('connect', () => {
    clearTimeout(stall);
    stall = setTimeout(() => {
      // A server that answered anything is alive (it may be loading its data, which ioredis waits for).
      if (redis.status === 'ready' || redis.status === 'end' || redis.stream.bytesRead > 0) return;
      redis.emit('error', new Error(`accepted the connection but did not answer within ${ANSWER_TIMEOUT_MS / 1000} s`));
      redis.disconnect(true);
    }, ANSWER_TIMEOUT_MS).unref();
  });
  redis.on('ready', () => clearTimeout(stall));
  redis.on('end', () => clearTimeout(stall));
}
