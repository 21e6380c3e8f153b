import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { ChannelPlugin, PluginContext } from '../../core/plugin-api.ts';
import { REDIS_URL, dropPrefix, testPrefix } from './redis.ts';

/**
 * A plugin context against the real Redis with a private prefix, for tests
 * that exercise one plugin's sender against its protocol peer. `close()`
 * removes every key it made and closes the connection.
 */
export async function pluginContext<S extends object>(
  plugin: ChannelPlugin<S>,
  settings: S,
): Promise<PluginContext<S> & { prefix: string; close(): Promise<void> }> {
  const prefix = testPrefix(plugin.name);
  const redis = new Redis(REDIS_URL);
  const controller = new AbortController();
  return {
    settings: plugin.settings.schema.parse(settings),
    logger: pino({ level: 'silent' }),
    redis,
    key: (...parts) => [prefix, 'plugin', plugin.name, ...parts].join(':'),
    signal: controller.signal,
    prefix,
    async close() {
      controller.abort();
      await dropPrefix(prefix, redis);
      redis.disconnect();
    },
  };
}
