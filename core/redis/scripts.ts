import type { Redis, Result } from 'ioredis';
import { defineEscalationScripts } from '../escalation/scripts.ts';

/**
 * Lua scripts: each runs atomically in Redis, which is what makes fan-out and
 * settling crash-safe. A script first checks that its entry is still pending
 * and stops if not: whoever acknowledged it first did the work, so two hubs or
 * workers that raced for one entry cannot both act on it.
 */

/**
 * KEYS: in, events, message record, producer-id key (or '' when none), dead, then one deliver stream per delivery,
 *       then one order list per delivery (its target's unsettled deliveries, oldest first),
 *       then, to arm an escalation with the fan-out, the escalations index and the escalation hash.
 * ARGV: group, entry, dedupe ttl ms, record meta json, record ttl ms, events maxlen,
 *       n deliveries, k shared field pairs, m dead-letter field pairs,
 *       then the k pairs, then n × (delivery id, channel, target), then the m pairs,
 *       then (escalation only) due ms, hash ttl ms, e hash field pairs, then the e pairs.
 */
const ROUTE = `
local group, entry = ARGV[1], ARGV[2]
-- Read-only guard first and the acknowledgement last: Redis does not roll a
-- script back, so an error half-way must leave the entry pending, not lost.
if #redis.call('XPENDING', KEYS[1], group, entry, entry, 1) == 0 then return {'gone'} end
local maxlen = ARGV[6]
if KEYS[4] ~= '' then
  local first = redis.call('GET', KEYS[4])
  if first then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'type', 'duplicate', 'entry', entry, 'first', first)
    redis.call('XACK', KEYS[1], group, entry)
    redis.call('XDEL', KEYS[1], entry)
    return {'duplicate', first}
  end
end
local n, k, m = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local shared = {}
for i = 1, k * 2 do shared[i] = ARGV[9 + i] end
local base = 9 + k * 2
for i = 1, n do
  local o = base + (i - 1) * 3
  local args = {KEYS[5 + i], '*', 'delivery', ARGV[o + 1], 'entry', entry, 'channel', ARGV[o + 2], 'target', ARGV[o + 3]}
  for j = 1, #shared do args[#args + 1] = shared[j] end
  redis.call('RPUSH', KEYS[5 + n + i], redis.call('XADD', unpack(args)))
end
if n > 0 then
  if KEYS[4] ~= '' then redis.call('SET', KEYS[4], entry, 'PX', ARGV[3]) end
  redis.call('HSET', KEYS[3], 'meta', ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'type', 'routed', 'entry', entry, 'deliveries', n)
  local ek = 5 + n * 2 + 1
  if KEYS[ek + 1] then
    local a = base + n * 3 + m * 2
    local e = tonumber(ARGV[a + 3])
    local args = {KEYS[ek + 1]}
    for j = 1, e * 2 do args[#args + 1] = ARGV[a + 3 + j] end
    redis.call('HSET', unpack(args))
    redis.call('PEXPIRE', KEYS[ek + 1], ARGV[a + 2])
    redis.call('ZADD', KEYS[ek], ARGV[a + 1], entry)
  end
end
if m > 0 then
  local d = base + n * 3
  local args = {KEYS[5], '*'}
  for j = 1, m * 2 do args[#args + 1] = ARGV[d + j] end
  local id = redis.call('XADD', unpack(args))
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'type', 'dead', 'stage', 'ingress', 'entry', entry, 'dead', id)
end
redis.call('XACK', KEYS[1], group, entry)
redis.call('XDEL', KEYS[1], entry)
return {'ok', tostring(n)}
`;

/**
 * KEYS: deliver stream, events, message record, dead, the target's order list.
 * ARGV: group, stream entry id, delivery id, outcome (sent|dead|retrying), record json, record ttl ms,
 *       events maxlen, k event field pairs, m dead-letter field pairs, then the k pairs, then the m pairs.
 */
const SETTLE = `
local outcome = ARGV[4]
if outcome ~= 'retrying' then
  -- Not pending and gone from the stream: another worker settled it. Not pending but still in the
  -- stream: its group was destroyed (and made anew) under it; settled here, or the new group makes it again.
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 and #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then return 'gone' end
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('LREM', KEYS[5], 1, ARGV[2])
end
redis.call('HSET', KEYS[3], 'd:' .. ARGV[3], ARGV[5])
if redis.call('PTTL', KEYS[3]) < 0 then redis.call('PEXPIRE', KEYS[3], ARGV[6]) end
local k, m = tonumber(ARGV[8]), tonumber(ARGV[9])
local event = {KEYS[2], 'MAXLEN', '~', ARGV[7], '*'}
for i = 1, k * 2 do event[#event + 1] = ARGV[9 + i] end
if m > 0 then
  local dead = {KEYS[4], '*'}
  for i = 1, m * 2 do dead[#dead + 1] = ARGV[9 + k * 2 + i] end
  local id = redis.call('XADD', unpack(dead))
  event[#event + 1] = 'dead'
  event[#event + 1] = id
end
redis.call('XADD', unpack(event))
return 'ok'
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    route(numKeys: number, ...args: (string | number)[]): Result<[string, string?], Context>;
    settle(numKeys: number, ...args: (string | number)[]): Result<string, Context>;
  }
}

/** Register the scripts on a connection (EVALSHA, loaded on first use). */
export function defineScripts(redis: Redis): Redis {
  redis.defineCommand('route', { lua: ROUTE });
  redis.defineCommand('settle', { lua: SETTLE });
  return defineEscalationScripts(redis);
}
