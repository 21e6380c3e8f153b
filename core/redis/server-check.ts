import { randomBytes } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import type { Keys } from './keys.ts';

/**
 * What the hub's guarantees assume of the Redis it runs on, checked by asking
 * it: that it never evicts keys (an evicted stream or consumer group loses
 * messages silently), and that the hub's Redis user may run every command the
 * hub needs (a user without one fails deep inside a delivery otherwise).
 */

/** The maxmemory-policy of every primary, or why it could not be read (CONFIG refused on managed Redis). */
export type PolicyFinding = { policies: Array<{ node: string; policy: string }> } | { unknown: string };

export async function maxmemoryPolicies(redis: Redis): Promise<PolicyFinding> {
  const nodes: Redis[] = redis instanceof Cluster ? (redis as Cluster).nodes('master') : [redis];
  try {
    const policies = await Promise.all(
      nodes.map(async (node) => {
        const [, policy] = (await node.call('CONFIG', 'GET', 'maxmemory-policy')) as [string, string];
        return { node: `${node.options.host}:${node.options.port}`, policy: policy ?? 'unknown' };
      }),
    );
    return { policies };
  } catch (err) {
    return { unknown: (err as Error).message };
  }
}

/**
 * The first command the hub needs that its Redis user may not run, as
 * Redis's NOPERM answer; undefined when it may run them all. Each is tried
 * for real on a key of the hub's own (in its slot, in a cluster), removed
 * afterwards: the commands of its Lua scripts inside one EVAL, the rest one by one.
 */
export async function missingPermission(redis: Redis, keys: Keys): Promise<string | undefined> {
  const key = `${keys.base}:probe:${randomBytes(4).toString('hex')}`;
  const [stream, other] = [`${key}:stream`, `${key}:other`];
  const inScripts = `
    redis.call('SET', KEYS[2], '1', 'PX', 60000) redis.call('GET', KEYS[2]) redis.call('INCR', KEYS[2]) redis.call('PTTL', KEYS[2])
    redis.call('PEXPIRE', KEYS[2], 60000) redis.call('EXISTS', KEYS[2]) redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[2], 'f', '1') redis.call('HSETNX', KEYS[2], 'g', '1') redis.call('HGET', KEYS[2], 'f')
    redis.call('HINCRBY', KEYS[2], 'f', 1) redis.call('HEXISTS', KEYS[2], 'f') redis.call('HDEL', KEYS[2], 'f') redis.call('DEL', KEYS[2])
    redis.call('ZADD', KEYS[2], 1, 'm') redis.call('ZSCORE', KEYS[2], 'm') redis.call('ZREMRANGEBYSCORE', KEYS[2], 5, 6)
    redis.call('ZREMRANGEBYRANK', KEYS[2], 5, 6) redis.call('ZREM', KEYS[2], 'm')
    redis.call('RPUSH', KEYS[2], 'x') redis.call('LINDEX', KEYS[2], 0) redis.call('LREM', KEYS[2], 1, 'y') redis.call('LPOP', KEYS[2])
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', 10, '*', 'f', 'v')
    redis.call('XRANGE', KEYS[1], id, id) redis.call('XPENDING', KEYS[1], 'g', '-', '+', 1)
    redis.call('XCLAIM', KEYS[1], 'g', 'c', 0, id, 'JUSTID') redis.call('XACK', KEYS[1], 'g', id) redis.call('XDEL', KEYS[1], id)
    redis.call('TIME')
    return 1`;
  const steps: Array<[string, ...Array<string | number>]> = [
    ['PING'],
    ['TIME'],
    ['XADD', stream, '*', 'f', 'v'],
    ['XGROUP', 'CREATE', stream, 'g', '0', 'MKSTREAM'],
    ['XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', 1, 'STREAMS', stream, '>'],
    ['EVAL', inScripts, 2, stream, other],
    ['EVALSHA', '0000000000000000000000000000000000000000', 1, stream],
    ['XAUTOCLAIM', stream, 'g', 'c', 0, '0-0', 'COUNT', 1],
    ['XPENDING', stream, 'g'],
    ['XINFO', 'GROUPS', stream],
    ['XLEN', stream],
    ['XREVRANGE', stream, '+', '-', 'COUNT', 1],
    ['XTRIM', stream, 'MAXLEN', '~', 10],
    ['SET', other, '1', 'PX', 60000],
    ['MGET', other],
    ['HSET', other + 'h', 'f', '1'],
    ['HGETALL', other + 'h'],
    ['HMGET', other + 'h', 'f'],
    ['ZADD', other + 'z', 1, 'm'],
    ['ZRANGE', other + 'z', 0, -1],
    ['ZRANGEBYSCORE', other + 'z', '-inf', '+inf'],
    ['ZCARD', other + 'z'],
    ['SADD', other + 's', 'm'],
    ['SMEMBERS', other + 's'],
    ['SCARD', other + 's'],
    ['SREM', other + 's', 'm'],
    ['RPUSH', other + 'l', 'x'],
    ['LRANGE', other + 'l', 0, -1],
    ['LPOS', other + 'l', 'x'],
    ['XGROUP', 'DESTROY', stream, 'g'],
  ];
  try {
    for (const [command, ...args] of steps) {
      try {
        await redis.call(command, ...args);
      } catch (err) {
        const message = (err as Error).message;
        if (/NOPERM/.test(message)) return message.replace(/^.*?(NOPERM)/, '$1');
        // Anything else (NOSCRIPT for the made-up script) means the command was allowed.
      }
    }
    return undefined;
  } finally {
    await redis.del(stream, other, `${other}h`, `${other}z`, `${other}s`, `${other}l`).catch(() => {});
  }
}
