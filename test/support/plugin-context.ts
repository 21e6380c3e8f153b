import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Metrics } from '../../core/metrics.ts';
import type { ChannelPlugin, ChannelSender, Delivery, OutboundMessage, PluginContext } from '../../core/plugin-api.ts';
import { Redactor } from '../../core/redactor.ts';
import { createKeys } from '../../core/redis/keys.ts';
import { createPluginContext } from '../../core/runtime/plugin-context.ts';
import { knowSecrets } from '../../core/runtime/plugin-settings.ts';
import { REDIS_URL, dropPrefix, testPrefix } from './redis.ts';

/**
 * A plugin context as a worker builds it (core/runtime/plugin-context.ts),
 * against the real Redis with a private prefix, for tests that exercise one
 * plugin's sender against its protocol peer. Its secret settings are in the
 * redactor, as the hub puts them there. `close()` removes every key it made
 * and closes the connection.
 */
export async function pluginContext<S extends object>(
  plugin: ChannelPlugin<S>,
  settings: S,
): Promise<PluginContext<S> & { prefix: string; hubMetrics: Metrics; close(): Promise<void> }> {
  const prefix = testPrefix(plugin.name);
  const redis = new Redis(REDIS_URL);
  const controller = new AbortController();
  const parsed = plugin.settings.schema.parse(settings);
  const redactor = new Redactor();
  knowSecrets(plugin.settings.secrets ?? [], parsed, redactor);
  const hubMetrics = new Metrics({ defaults: false });
  const services = { redis, keys: createKeys(prefix), logger: pino({ level: 'silent' }), metrics: hubMetrics, redactor, consumerName: `test:${process.pid}` };
  return {
    ...createPluginContext(services, plugin.name, parsed, controller.signal),
    prefix,
    hubMetrics,
    async close() {
      controller.abort();
      await dropPrefix(prefix, redis);
      redis.disconnect();
    },
  };
}

/** A sender of `plugin` built as a worker builds it, with its context; `close()` closes both and removes the keys. */
export async function openSender<S extends object>(plugin: ChannelPlugin<S>, settings: S): Promise<{ sender: ChannelSender; context: PluginContext<S>; close(): Promise<void> }> {
  const context = await pluginContext(plugin, settings);
  const sender = await plugin.createSender(context);
  return {
    sender,
    context,
    async close() {
      await sender.close?.();
      await context.close();
    },
  };
}

/** The error a delivery fails with; the test fails when it succeeds. */
export async function deliveryFailure(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof Error, `a delivery failed with a non-error: ${String(err)}`);
    return err;
  }
  assert.fail('expected the delivery to fail');
}

let deliveries = 0;

/** `message` to `target` as a worker hands it to `deliver`: first attempt, with an id and message id of its own. */
export function testDelivery(channel: string, target: string, message: OutboundMessage): Delivery {
  deliveries += 1;
  return { id: `d-${deliveries}`, messageId: `1700000000000-${deliveries}`, channel, target, attempt: 1, message };
}
