import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { HubConfig } from '../config/schema.ts';
import { HubError } from '../errors.ts';

/** Lua scripts by command name (`route` → `redis.route(...)`), each feature's own; the composition root registers them. */
export type Scripts = Readonly<Record<string, string>>;

/** How long a connection may stay accepted by the server without answering before it is dropped and tried again. */
export const ANSWER_TIMEOUT_MS = 5000;

/** Why a connection can never work (a database the server does not have): known only once the server answered. */
const fatalErrors = new WeakMap<Redis, HubError>();

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Where the hub's Redis is and how to reach it (CONTRACT §10): the URL gives
 * the user, password, database and TLS (rediss://); Sentinel or Cluster, when
 * set, say where the servers are.
 */
export interface RedisTarget {
  url: string;
  sentinels?: HostPort[];
  sentinelMaster?: string;
  sentinelPassword?: string;
  clusterNodes?: HostPort[];
  caFile?: string;
}

/** The target of a hub's configuration. */
export function redisTarget(config: Pick<HubConfig, 'redisUrl'> & { redis?: Partial<HubConfig['redis']> }): RedisTarget {
  return { url: config.redisUrl, ...config.redis };
}

/** Whether keys must be hash-tagged into one slot (core/redis/keys.ts). */
export function isCluster(target: string | RedisTarget): boolean {
  return typeof target !== 'string' && target.clusterNodes !== undefined;
}

/** The target as logs and errors may show it: no password. */
export function describeTarget(target: string | RedisTarget): string {
  if (typeof target === 'string') return displayRedisUrl(target);
  const hosts = (list: HostPort[]) => list.map((h) => `${h.host}:${h.port}`).join(',');
  if (target.sentinels) return `${displayRedisUrl(target.url)} (primary "${target.sentinelMaster ?? 'mymaster'}" of Sentinel ${hosts(target.sentinels)})`;
  if (target.clusterNodes) return `${displayRedisUrl(target.url)} (Cluster ${hosts(target.clusterNodes)})`;
  return displayRedisUrl(target.url);
}

/** Whatever connected to a Redis needs: the user, password, database and TLS of the URL. */
function serverOptions(target: RedisTarget): RedisOptions & { host: string; port: number } {
  const url = new URL(target.url);
  const tls: ConnectionOptions | undefined = url.protocol === 'rediss:' ? { ...(target.caFile ? { ca: readCa(target.caFile) } : {}) } : undefined;
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 6379),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    db: Number(url.pathname.slice(1) || 0),
    ...(tls ? { tls } : {}),
  };
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new HubError('HUB_ERR_CONFIG', `REDIS_CA_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); point it at the PEM file of the CA that signed the Redis server's certificate`);
  }
}

/**
 * A connection for a long-running process: commands wait through a Redis
 * restart or a failover instead of failing (nothing is dropped while Redis is
 * away), and reconnection never gives up. The command line asks for
 * `failFast`, so that it says "Redis is not reachable" instead of waiting.
 * `scripts` are loaded on first use (EVALSHA, and EVAL when the server does not
 * know them: a new primary after a failover), on this connection and its duplicates.
 *
 * Under Sentinel the connection asks the sentinels for the primary whenever it
 * reconnects; a command answered READONLY (it reached the old primary,
 * now a replica) reconnects and is sent again. In a Cluster it is an ioredis
 * Cluster, which follows MOVED and ASK; the hub uses only what both have in
 * common (commands, pipelines of one slot, scripts, duplicate, events), so it is
 * typed as one Redis.
 */
export function connectRedis(target: string | RedisTarget, options: { name: string; failFast?: boolean; scripts?: Scripts }): Redis {
  const resolved = typeof target === 'string' ? { url: target } : target;
  const server = serverOptions(resolved);
  const retryStrategy = (times: number) => (options.failFast && times > 2 ? null : Math.min(times * 200, 5000));
  const common: RedisOptions = {
    connectionName: options.name,
    maxRetriesPerRequest: options.failFast ? 1 : null,
    enableOfflineQueue: true,
    scripts: Object.fromEntries(Object.entries(options.scripts ?? {}).map(([name, lua]) => [name, { lua }])),
  };
  let redis: Redis;
  if (resolved.clusterNodes) {
    if (server.db !== 0) throw new HubError('HUB_ERR_CONFIG', `REDIS_URL names database ${server.db}, but a Redis Cluster has only database 0; drop the /${server.db} from REDIS_URL`);
    const { host: _host, port: _port, db: _db, ...auth } = server;
    const cluster = new Cluster(resolved.clusterNodes, {
      clusterRetryStrategy: retryStrategy,
      enableOfflineQueue: true,
      scripts: common.scripts,
      // A slot moved or its primary failing over: try again for a while rather than failing the command.
      retryDelayOnMoved: 50,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 100,
      maxRedirections: 32,
      // Managed clusters announce names their certificates are for; do not resolve them to addresses first.
      ...(auth.tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
      redisOptions: { ...auth, connectionName: options.name, maxRetriesPerRequest: common.maxRetriesPerRequest },
    });
    redis = cluster as unknown as Redis;
  } else if (resolved.sentinels) {
    const { host: _host, port: _port, ...auth } = server;
    redis = new Redis({
      ...common,
      ...auth,
      sentinels: resolved.sentinels,
      name: resolved.sentinelMaster ?? 'mymaster',
      ...(resolved.sentinelPassword ? { sentinelPassword: resolved.sentinelPassword } : {}),
      ...(auth.tls ? { enableTLSForSentinelMode: true, sentinelTLS: auth.tls } : {}),
      // Not failoverDetector: its +switch-master disconnects a connection that is still asking the sentinels
      // (ioredis 5.11), which then ends for good ("Connection is closed.") instead of reconnecting. A failed
      // primary's socket closes, and a demoted one answers READONLY: both reconnect through the sentinels.
      sentinelRetryStrategy: retryStrategy,
      retryStrategy,
      reconnectOnError: (err) => (/^READONLY/.test(err.message) ? 2 : false),
    });
  } else {
    redis = new Redis({ ...common, ...server, retryStrategy });
  }
  guard(redis, resolved);
  return redis;
}

/** A second connection with the same settings (for a blocking read) or some changed, guarded like the first. */
export function duplicateConnection(redis: Redis, name: string, overrides: Partial<RedisOptions> = {}): Redis {
  const target = targets.get(redis) ?? { url: `redis://${redis.options.host}:${redis.options.port}/${redis.options.db ?? 0}` };
  let copy: Redis;
  if (redis instanceof Cluster) {
    const cluster = redis as Cluster;
    copy = cluster.duplicate([], { ...overrides, redisOptions: { ...cluster.options.redisOptions, ...overrides, connectionName: name } }) as unknown as Redis;
  } else {
    copy = redis.duplicate({ ...overrides, connectionName: name });
  }
  guard(copy, target);
  return copy;
}

const targets = new WeakMap<Redis, RedisTarget>();

/**
 * A connection error as a sentence a user can act on (wrong password, a
 * certificate expired or from an unknown CA, a command the ACL user may not
 * run); undefined for the rest (a refused or reset connection says enough).
 */
export function explainRedisError(err: Error & { code?: string }): string | undefined {
  const text = err.message;
  const said = `(${text.replace(/^.*?(WRONGPASS|NOAUTH|NOPERM)/, '$1')})`;
  if (/WRONGPASS|invalid username-password/i.test(text)) {
    return /sentinel/i.test(text)
      ? `a sentinel refused the password ${said}; check REDIS_SENTINEL_PASSWORD`
      : `Redis refused the user name and password of REDIS_URL ${said}; check them (an ACL user: rediss://user:password@host:6379)`;
  }
  if (/NOAUTH/.test(text)) return `Redis requires a password and none was given ${said}; put the user and password in REDIS_URL (redis://user:password@host:6379)`;
  if (err.code === 'CERT_HAS_EXPIRED' || /certificate has expired/i.test(text)) return `the TLS certificate of the Redis server has expired (${text}); the server needs a renewed certificate`;
  if (err.code === 'CERT_NOT_YET_VALID') return `the TLS certificate of the Redis server is not valid yet (${text}); check the server's certificate and both clocks`;
  if (/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_GET_ISSUER_CERT)$/.test(err.code ?? '')) {
    return `the TLS certificate of the Redis server is signed by a CA this process does not trust (${text}); set REDIS_CA_FILE to the PEM file of that CA`;
  }
  if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the TLS certificate of the Redis server is not for the host named in REDIS_URL (${text}); use a host name the certificate lists`;
  if (/NOPERM/.test(text)) return `the Redis user of REDIS_URL may not run a command the hub needs ${said}; grant the ACL rule of the README's "Redis deployments"`;
  return undefined;
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
      const onEnd = () => reject(fatalErrors.get(redis) ?? explained(redis, lastError) ?? new Error('the connection was closed'));
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

/** A connection's last error as a HubError naming the server, when there is a sentence for it. */
function explained(redis: Redis, err: Error | undefined): Error | undefined {
  const sentence = err && explainRedisError(err);
  const target = targets.get(redis);
  return sentence ? new HubError('HUB_ERR_REDIS', `cannot use Redis at ${target ? describeTarget(target) : 'REDIS_URL'}: ${sentence}`, { cause: err }) : err;
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
function guard(redis: Redis, target: RedisTarget): void {
  targets.set(redis, target);
  const url = target.url;
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
  // A Cluster's own connections to its nodes are not this one: no stall to watch here.
  if (redis instanceof Cluster) return;
  redis.on('connect', () => {
    clearTimeout(stall);
    stall = setTimeout(() => {
      // A server that answered anything is alive (it may be loading its data, which ioredis waits for).
      // Only a socket still connected and silent: a reconnect under way (asking the sentinels) must not be cut, or it ends for good.
      if (redis.status !== 'connect' || redis.stream.bytesRead > 0) return;
      redis.emit('error', new Error(`accepted the connection but did not answer within ${ANSWER_TIMEOUT_MS / 1000} s`));
      redis.disconnect(true);
    }, ANSWER_TIMEOUT_MS).unref();
  });
  redis.on('ready', () => clearTimeout(stall));
  redis.on('close', () => clearTimeout(stall));
  redis.on('end', () => clearTimeout(stall));
}
