import { fileURLToPath } from 'node:url';
import ms from 'ms';
import { z } from 'zod';

/** A duration as `"24h"`, `"15m"`, `"500ms"` or a number of milliseconds. */
export const duration = z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const parsed = /^\d+$/.test(value) ? Number(value) : ms(value as ms.StringValue);
  if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed < 0) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as "30s", "15m" or "24h", got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return parsed;
});

/** A whole number from the file, or from a variable's digits (a blank variable is an error, not 0). */
const integer = z.preprocess((v) => (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v), z.number().int());
/** The plugins shipped with the hub, wherever it runs from (a checkout, `dist/`, the image, an installed package). */
export const BUILTIN_PLUGINS = fileURLToPath(new URL('../../plugins', import.meta.url));

/** `host:port,host:port` (or a list of them) → the addresses Redis Sentinel or Cluster is first asked at. */
const hostList = z
  .union([z.array(z.string()), z.string().transform((list) => list.split(',').map((item) => item.trim()).filter((item) => item !== ''))])
  .transform((items, ctx) => {
    const out: Array<{ host: string; port: number }> = [];
    for (const item of items) {
      const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(item.trim());
      if (!match || Number(match[2]) > 65535) {
        ctx.addIssue({ code: 'custom', message: `expected host:port pairs separated by commas, such as 10.0.0.1:26379,10.0.0.2:26379; ${JSON.stringify(item)} is not one` });
        return z.NEVER;
      }
      out.push({ host: match[1]!, port: Number(match[2]) });
    }
    if (out.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'expected at least one host:port' });
      return z.NEVER;
    }
    return out;
  });

const count = (min: number, fallback: number) => integer.pipe(z.number().min(min)).default(fallback);

/** `"60/min"`, `"10/s"`, `"1000/h"`: at most that many requests per period, in bursts of up to that many. */
const RATE = /^\s*(\d+)\s*\/\s*(s|sec|second|m|min|minute|h|hour)\s*$/;
const PERIOD_MS: Record<string, number> = { s: 1000, sec: 1000, second: 1000, m: 60_000, min: 60_000, minute: 60_000, h: 3_600_000, hour: 3_600_000 };
const rate = z.string().transform((value, ctx) => {
  const match = RATE.exec(value);
  if (!match || Number(match[1]) < 1) {
    ctx.addIssue({ code: 'custom', message: `expected a rate such as "60/min", "10/s" or "1000/h", got ${JSON.stringify(value.slice(0, 40))}` });
    return z.NEVER;
  }
  return { count: Number(match[1]), periodMs: PERIOD_MS[match[2]!]! };
});

/** One producer of the HTTP ingress; the token itself is a secret and never appears in an error. */
const producerToken = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'expected a name of 1 to 64 letters, digits, "_", ".", "@" or "-"'),
  token: z.string().min(16, 'expected a token of at least 16 characters (e.g. from `openssl rand -hex 24`)').max(512, 'expected a token of at most 512 characters'),
  groups: z.array(z.string().regex(/^(\*|#[^\s,#\u0000-\u001f\u007f]{1,200})$/, 'expected a group such as "#admins", or "*" for every group')).min(1, 'expected at least one group, or ["*"] for every group'),
  rate: rate.optional(),
});
const producerTokens = z
  .preprocess((value, ctx) => {
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value);
    } catch {
      // The text itself holds tokens: the error must not repeat it.
      ctx.addIssue({ code: 'custom', message: 'expected a JSON array such as [{"name":"alertmanager","token":"…","groups":["#ops"]}]; the value does not parse as JSON' });
      return z.NEVER;
    }
  }, z.array(producerToken))
  .superRefine((tokens, ctx) => {
    const names = new Set<string>();
    const secrets = new Set<string>();
    tokens.forEach((t, i) => {
      if (names.has(t.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `two producers are named ${JSON.stringify(t.name)}; give each its own name` });
      if (secrets.has(t.token)) ctx.addIssue({ code: 'custom', path: [i, 'token'], message: 'the same token is given to two producers; give each its own' });
      names.add(t.name);
      secrets.add(t.token);
    });
  });

export const hubConfigSchema = z.strictObject({
  redisUrl: z.url({ protocol: /^rediss?$/, error: 'expected a redis:// or rediss:// URL such as redis://127.0.0.1:6379' }).default('redis://127.0.0.1:6379'),
  /** High availability and TLS beside `redisUrl` (CONTRACT §10); the URL still gives the user, password, database and redis:// or rediss://. */
  redis: z
    .strictObject({
      /** Redis Sentinel: the sentinels asked where the primary is. */
      sentinels: hostList.optional(),
      sentinelMaster: z.string().min(1).default('mymaster'),
      /** Sentinel's own password (`requirepass` of the sentinels), when set: from the environment only. */
      sentinelPassword: z.string().optional(),
      /** Redis Cluster: some of its nodes, to learn the rest from. */
      clusterNodes: hostList.optional(),
      /** A PEM file of the CA that signed the server's certificate, for a rediss:// URL with a private CA. */
      caFile: z.string().min(1).optional(),
      /** How often the server's settings are checked again (maxmemory-policy, the user's permissions). */
      checkInterval: duration.pipe(z.number().min(1000, 'expected at least "1s"')).default(5 * 60_000),
    })
    .refine((redis) => !(redis.sentinels && redis.clusterNodes), { message: 'REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set; a Redis is either watched by Sentinel or a Cluster: set one of them' })
    .prefault({}),
  prefix: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected letters, digits, "_", "." or "-"').default('notify'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  mapping: z
    .strictObject({
      couchdbUrl: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL such as http://admin:secret@127.0.0.1:5984' }).optional(),
      db: z.string().min(1).default('notifications'),
      docId: z.string().min(1).default('ccs.notifications'),
      file: z.string().min(1).default('./mapping.json'),
    })
    .prefault({}),
  ingress: z
    .strictObject({
      batchSize: count(1, 200),
      blockMs: count(1, 1000),
      maxBodyBytes: count(1, 64 * 1024),
      maxGroups: count(1, 100),
      dedupeWindow: duration.default(24 * 3600_000),
    })
    .prefault({}),
  delivery: z
    .strictObject({
      concurrency: count(1, 64),
      maxAttempts: count(1, 8),
      backoffBase: duration.default(1000),
      backoffMax: duration.default(5 * 60_000),
      /** The least a rate-limited retry waits, even when the peer says `Retry-After: 0`. */
      rateLimitFloor: duration.pipe(z.number().min(100, 'expected at least "100ms": a 429 must never be retried in a hot loop')).default(1000),
      timeout: duration.default(30_000),
      claimIdle: duration.default(30_000),
      /**
       * At a stop (SIGTERM), how long calls to a peer already in flight may take to finish;
       * one cut then is sent again by another worker. Keep it under the supervisor's own
       * (Docker 10 s, Kubernetes terminationGracePeriodSeconds, systemd TimeoutStopSec).
       */
      stopGrace: duration.default(5000),
      batchSize: count(1, 200),
    })
    .prefault({}),
  /** How long `hub status <msgId>` remembers a message, its targets and attempts. */
  recordRetention: duration.default(7 * 24 * 3600_000),
  /** The outcome stream is capped (approximately) at this many entries. */
  eventsMaxLen: count(1000, 100_000),
  http: z
    .strictObject({
      port: integer.pipe(z.number().min(0).max(65535)).default(9464),
      host: z.string().default('0.0.0.0'),
    })
    .prefault({}),
  /** The HTTP ingress (POST /v1/…): on when at least one producer token is configured. */
  httpIngress: z
    .strictObject({
      port: integer.pipe(z.number().min(0).max(65535)).default(9465),
      host: z.string().default('0.0.0.0'),
      /** Producer tokens: from HUB_INGRESS_TOKENS (a JSON array) only, never from the file. */
      tokens: producerTokens.default([]),
      /** A request body over this is refused with 413 (an Alertmanager notification of many alerts is the largest). */
      maxRequestBytes: count(1024, 1024 * 1024),
      /** A client that has not sent its headers within this is answered 408 and dropped. */
      headersTimeout: duration.default(10_000),
      /** A client that has not sent its whole request within this is answered 408 and dropped. */
      requestTimeout: duration.default(30_000),
      /** Redis not confirming an entry within this is answered 503 (the producer retries). */
      redisTimeout: duration.default(2000),
    })
    .prefault({}),
  plugins: z
    .strictObject({
      /** Folders scanned for plugins: each sub-folder with an `index.ts`/`index.js` is one. */
      dirs: z.array(z.string()).default([BUILTIN_PLUGINS]),
      /** Folders of plugins kept outside this repository, scanned besides `dirs`; `HUB_PLUGIN_DIRS` gives them `:`-separated. */
      externalDirs: z
        .union([z.array(z.string()), z.string().transform((list) => list.split(':').filter((dir) => dir !== ''))])
        .default([]),
      /** Extra plugin modules: a file's path, or an npm package's name, looked up in the working directory's node_modules, then beside the hub (its entry default-exports definePlugin({...})). */
      modules: z.array(z.string()).default([]),
    })
    .prefault({}),
  console: z
    .strictObject({
      /** The operators' sign-in secret (`HUB_CONSOLE_TOKEN`); the console at `/console` is off without it. */
      token: z.string().min(16, 'expected at least 16 characters: it is the one secret guarding replay, purge and the mapping').optional(),
    })
    .prefault({}),
  /** Per-channel settings (never secrets: those come from the environment). */
  channels: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
});

export type HubConfig = z.output<typeof hubConfigSchema>;
export type HubConfigInput = z.input<typeof hubConfigSchema>;

/** Environment variables that override the config file, by config path. */
export const ENV_OVERRIDES: Record<string, string> = {
  REDIS_URL: 'redisUrl',
  REDIS_SENTINELS: 'redis.sentinels',
  REDIS_SENTINEL_MASTER: 'redis.sentinelMaster',
  REDIS_SENTINEL_PASSWORD: 'redis.sentinelPassword',
  REDIS_CLUSTER_NODES: 'redis.clusterNodes',
  REDIS_CA_FILE: 'redis.caFile',
  HUB_PREFIX: 'prefix',
  LOG_LEVEL: 'logLevel',
  COUCHDB_URL: 'mapping.couchdbUrl',
  COUCHDB_DB: 'mapping.db',
  MAPPING_DOC_ID: 'mapping.docId',
  MAPPING_FILE: 'mapping.file',
  HUB_HTTP_PORT: 'http.port',
  HUB_HTTP_HOST: 'http.host',
  HUB_CONCURRENCY: 'delivery.concurrency',
  HUB_MAX_ATTEMPTS: 'delivery.maxAttempts',
  HUB_PLUGIN_DIRS: 'plugins.externalDirs',
  HUB_INGRESS_TOKENS: 'httpIngress.tokens',
  HUB_INGRESS_PORT: 'httpIngress.port',
  HUB_INGRESS_HOST: 'httpIngress.host',
  HUB_CONSOLE_TOKEN: 'console.token',
};
