import { Redis } from 'ioredis';
import { defineScripts } from './scripts.ts';

/**
 * A connection for a long-running process: commands wait through a Redis
 * restart instead of failing (nothing is dropped while Redis is away), and
 * reconnection never gives up. The command line asks for `failFast`, so that
 * it says "Redis is not reachable" instead of waiting.
 */
export function connectRedis(url: string, options: { name: string; failFast?: boolean }): Redis {
  const redis = new Redis(url, {
    connectionName: options.name,
    maxRetriesPerRequest: options.failFast ? 1 : null,
    enableOfflineQueue: true,
    lazyConnect: false,
    retryStrategy: (times) => (options.failFast && times > 2 ? null : Math.min(times * 200, 5000)),
  });
  // Errors surface where commands fail; without a listener ioredis prints every reconnect attempt.
  redis.on('error', () => {});
  return defineScripts(redis);
}
