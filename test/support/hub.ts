import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { App, type StartOptions } from '../../core/app.ts';
import { fromPairs } from '../../core/redis/fields.ts';
import type { HubConfigInput } from '../../core/config/schema.ts';
import { REDIS_URL, dropPrefix, testPrefix } from './redis.ts';

export interface TestHub {
  app: App;
  prefix: string;
  redis: Redis;
  /** Every log line the hub wrote. */
  logs: string[];
  mappingFile: string;
  /** XADD an entry to the hub's ingress stream; resolves with its id. */
  send(fields: Record<string, string>): Promise<string>;
  writeMapping(mapping: unknown): void;
  /** The entries of a stream (`dead`, `events`, `deliver:matrix`, …) as records. */
  read(stream: string): Promise<Array<{ id: string } & Record<string, string>>>;
  stop(): Promise<void>;
}

/**
 * A whole hub against the real Redis with its own key prefix, its mapping in a
 * temporary file (the embedded default), and log lines collected.
 */
export async function startTestHub(options: {
  mapping?: unknown;
  env?: Record<string, string>;
  config?: HubConfigInput;
  start?: StartOptions;
  name?: string;
}): Promise<TestHub> {
  const prefix = testPrefix(options.name ?? 'hub');
  const dir = mkdtempSync(join(tmpdir(), 'hub-test-'));
  const mappingFile = join(dir, 'mapping.json');
  const writeMapping = (mapping: unknown) => writeFileSync(mappingFile, JSON.stringify({ _id: 'ccs.notifications', mapping }));
  if (options.mapping !== undefined) writeMapping(options.mapping);
  const { app, logs } = await launchHub(prefix, { ...options, config: { ...options.config, mapping: { file: mappingFile, ...options.config?.mapping } } });
  const redis = new Redis(REDIS_URL);
  return {
    app,
    prefix,
    redis,
    logs,
    mappingFile,
    writeMapping,
    send: async (fields) => (await redis.xadd(`${prefix}:in`, '*', ...Object.entries(fields).flat())) as string,
    read: async (stream) => {
      const entries = (await redis.xrange(`${prefix}:${stream}`, '-', '+')) as Array<[string, string[]]>;
      return entries.map(([id, flat]) => ({ ...fromPairs(flat), id }));
    },
    async stop() {
      await app.stop();
      await dropPrefix(prefix, redis);
      redis.disconnect();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Poll until `check` returns a truthy value (or throw after `timeoutMs` with `what`). */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** A log destination for a hub in this process, and the lines it wrote. */
export function collectLogs(): { logs: string[]; logDestination: Writable } {
  const logs: string[] = [];
  const logDestination = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { logs, logDestination };
}

/**
 * A whole hub in this process on `prefix`, against the real Redis, with short
 * timings for tests and its log lines collected.
 */
export async function launchHub(
  prefix: string,
  options: { config?: HubConfigInput; env?: Record<string, string>; start?: StartOptions },
): Promise<{ app: App; logs: string[] }> {
  const { logs, logDestination } = collectLogs();
  const config: HubConfigInput = {
    logLevel: 'debug',
    ...options.config,
    prefix,
    redisUrl: REDIS_URL,
    http: { port: 0, host: '127.0.0.1', ...options.config?.http },
    delivery: { backoffBase: 50, backoffMax: 500, ...options.config?.delivery },
    ingress: { blockMs: 100, ...options.config?.ingress },
  };
  const app = await App.create({ config, env: { ...options.env }, logDestination });
  await app.start(options.start);
  return { app, logs };
}
