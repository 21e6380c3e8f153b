import { Redis } from 'ioredis';

/** Lua scripts by command name (`route` → `redis.route(...)`), each feature's own; the composition root registers them. */
export type Scripts = Readonly<Record<string, string>>;

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
  // Errors surface where commands fail; without a listener ioredis prints every reconnect attempt.
  redis.on('error', () => {});
  return redis;
}
