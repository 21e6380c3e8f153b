import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Metrics } from '../metrics.ts';
import type { PluginContext, PluginMetrics } from '../plugin-api.ts';
import type { Redactor } from '../redactor.ts';
import type { Keys } from '../redis/keys.ts';
import { Lease } from '../redis/lease.ts';

/** The hub's services a plugin context is made of (a slice of the container's cradle). */
export interface PluginServices {
  redis: Redis;
  keys: Keys;
  logger: Logger;
  metrics: Metrics;
  redactor: Redactor;
  consumerName: string;
}

/**
 * What a plugin is given: its settings and the hub's own services, scoped to
 * the plugin (its keys, its leases, its metrics' names). Every process and
 * every test builds plugin contexts here, so a plugin sees the same services
 * wherever it runs.
 */
export function createPluginContext<Settings>(
  services: PluginServices,
  channel: string,
  settings: Settings,
  signal: AbortSignal,
  acknowledgements: Pick<PluginContext<Settings>, 'awaitsAcknowledgement' | 'acknowledge'> = {},
): PluginContext<Settings> {
  const { redis, keys, redactor, consumerName } = services;
  const key = (...parts: string[]) => keys.plugin(channel, ...parts);
  return {
    settings,
    logger: services.logger.child({ plugin: channel }),
    redis,
    key,
    signal,
    redactor,
    // A holder per call, so that two leases of one process exclude each other as well.
    lease: (name, ttlMs) => new Lease(redis, key(name), `${consumerName}:${randomBytes(4).toString('hex')}`, ttlMs),
    metrics: pluginMetrics(services.metrics, channel),
    ...acknowledgements,
  };
}

const METRIC_NAME = /^[a-z][a-z0-9_]*$/;

function pluginMetrics(metrics: Metrics, channel: string): PluginMetrics {
  const metric = <M extends Counter | Gauge>(Kind: new (config: { name: string; help: string; labelNames: string[]; registers: Registry[] }) => M, kind: string, name: string, help: string, labelNames: string[] = []): M => {
    const counter = kind === 'counter';
    if (!METRIC_NAME.test(name) || name.endsWith('_total') !== counter) {
      throw new Error(`plugin ${channel}: the ${kind} name ${JSON.stringify(name)} must be lower-case snake_case${counter ? ' ending in _total' : ', without _total'}`);
    }
    const fullName = `hub_plugin_${channel.replaceAll('-', '_')}_${name}`;
    const known = metrics.registry.getSingleMetric(fullName);
    if (known instanceof Kind) return known;
    if (known) throw new Error(`plugin ${channel}: ${fullName} is already a metric of another kind`);
    return new Kind({ name: fullName, help, labelNames, registers: [metrics.registry] });
  };
  return {
    counter: (name, help, labelNames) => metric(Counter, 'counter', name, help, labelNames),
    gauge: (name, help, labelNames) => metric(Gauge, 'gauge', name, help, labelNames),
  };
}
