import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
// awilix's build without loadModules, which nothing here uses: its main build imports fast-glob and
// micromatch into every process for it (1.2 MB of heap).
import { type AwilixContainer, asClass, asFunction, asValue, createContainer, InjectionMode } from 'awilix/browser';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Env } from './config/env.ts';
import { loadConfigFile, resolveConfig } from './config/load-config.ts';
import type { HubConfig, HubConfigInput } from './config/schema.ts';
import { Hub } from './ingress/hub.ts';
import { HttpIngress } from './ingress/http/server.ts';
import { createLogger } from './logger.ts';
import { CouchMappingSource } from './mapping/couch-source.ts';
import { FileMappingSource } from './mapping/file-source.ts';
import type { MappingSource } from './mapping/source.ts';
import { MappingStore } from './mapping/store.ts';
import type { TargetRules } from './mapping/validate.ts';
import { Metrics } from './metrics.ts';
import { Redactor } from './redactor.ts';
import { digestScripts } from './digest/scripts.ts';
import { escalationScripts } from './escalation/scripts.ts';
import { routeScripts } from './ingress/route-script.ts';
import { journalScripts } from './journal/scripts.ts';
import { type Scripts, connectRedis, isCluster, redisTarget } from './redis/connect.ts';
import { RedisHealth } from './redis/health.ts';
import { type Keys, createKeys } from './redis/keys.ts';
import { pendingScripts } from './runtime/pending.ts';
import { tickScripts } from './runtime/tick-call.ts';
import { PluginRegistry } from './runtime/plugin-registry.ts';

/** Every Lua script of the hub, by command name: the features' own, registered on the hub's connection here. */
export const HUB_SCRIPTS: Scripts = { ...journalScripts, ...routeScripts, ...escalationScripts, ...pendingScripts, ...tickScripts, ...digestScripts };

/** Everything a hub process is made of; each piece is built on first use. */
export interface Cradle {
  env: Env;
  config: HubConfig;
  redactor: Redactor;
  logger: Logger;
  metrics: Metrics;
  keys: Keys;
  redis: Redis;
  /** Whether Redis answers, and why not; logs each change once. */
  redisHealth: RedisHealth;
  plugins: PluginRegistry;
  channelNames: ReadonlySet<string>;
  targetRules: ReadonlyMap<string, TargetRules>;
  mappingSource: MappingSource;
  mappingStore: MappingStore;
  hub: Hub;
  /** POST /v1/… for producers that speak HTTP; on when producer tokens are configured. */
  httpIngress: HttpIngress;
  /** This process's name in every consumer group and heartbeat set. */
  consumerName: string;
}

export interface BuildOptions {
  env?: Env;
  cwd?: string;
  /** Used instead of `hub.config.ts`; the environment still overrides it. */
  config?: HubConfigInput;
  /** Where log lines go (a test collects them to look for secrets). */
  logDestination?: NodeJS.WritableStream;
  /** The command line fails fast when Redis is away; services wait for it. */
  failFast?: boolean;
}

/**
 * Build the dependency graph of a hub process with awilix. Tests build their
 * own with `config: { prefix: testPrefix() }` against the real Redis.
 */
export async function buildContainer(options: BuildOptions = {}): Promise<AwilixContainer<Cradle>> {
  const env = options.env ?? process.env;
  const config = resolveConfig(options.config ?? (await loadConfigFile(env, options.cwd)), env);
  const redactor = new Redactor();
  redactor.addUrl(config.redisUrl);
  redactor.add(config.redis.sentinelPassword);
  redactor.addUrl(config.mapping.couchdbUrl);
  for (const producer of config.httpIngress.tokens) redactor.add(producer.token);
  redactor.add(config.console.token);
  const plugins = await PluginRegistry.load(config, env, redactor, options.cwd);

  const container = createContainer<Cradle>({ injectionMode: InjectionMode.PROXY, strict: true });
  container.register({
    env: asValue(env),
    config: asValue(config),
    redactor: asValue(redactor),
    plugins: asValue(plugins),
    channelNames: asValue(plugins.names),
    targetRules: asValue(plugins.targetRules),
    consumerName: asValue(`${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`),
    logger: asFunction(({ config, redactor }: Cradle) => createLogger({ level: config.logLevel, redactor, ...(options.logDestination ? { destination: options.logDestination } : {}) })).singleton(),
    metrics: asFunction(() => new Metrics()).singleton(),
    keys: asFunction(({ config }: Cradle) => createKeys(config.prefix, { hashTag: isCluster(redisTarget(config)) })).singleton(),
    redis: asFunction(({ config, consumerName }: Cradle) => connectRedis(redisTarget(config), { name: `hub:${consumerName}`, failFast: options.failFast ?? false, scripts: HUB_SCRIPTS }))
      .singleton()
      .disposer((redis) => void redis.disconnect()),
    redisHealth: asClass(RedisHealth).singleton(),
    mappingSource: asFunction(({ config, logger }: Cradle): MappingSource => {
      const { couchdbUrl, db, docId, file } = config.mapping;
      return couchdbUrl ? new CouchMappingSource({ url: couchdbUrl, db, docId, logger }) : new FileMappingSource({ path: file });
    }).singleton(),
    mappingStore: asClass(MappingStore).singleton(),
    hub: asClass(Hub).singleton(),
    httpIngress: asClass(HttpIngress).singleton(),
  });
  return container;
}
