/**
 * The router's Lua script. It runs atomically in Redis, which is what makes
 * fan-out crash-safe: an entry is either wholly turned into its deliveries,
 * its record, its escalation, its holds in throttle windows and its dead
 * letter and acknowledged, or left pending. It first checks that its entry is
 * still pending and stops if not: whoever acknowledged it first did the work,
 * so two hubs that raced for one entry cannot both act on it.
 */
import type { Result } from 'ioredis';
import { THROTTLE_LUA } from '../digest/throttle-lua.ts';
import { ENQUEUE_LUA } from '../journal/enqueue.ts';
import { ERROR_TEXT_LUA } from '../redis/lua-error.ts';

/**
 * One entry's part, `route_one(k, a)`, reading the batch's KEYS and ARGV in place
 * (the journal's and the throttle's fragments read them the same way, from the
 * offsets they are given): copying each entry's part into tables of its own cost
 * Redis about 2 µs of the 25 an entry takes. The entry's own keys are KEYS[k + 1]…: message
 * record, producer-id key (`in` again when none: a Redis Cluster refuses an empty
 * key name), escalation hash, then the t throttle windows, then the deliveries
 * (journal enqueue block). Its own arguments are ARGV[a + 3]…: entry, r record
 * field pairs, m dead-letter field pairs, e escalation field pairs (0: no
 * escalation), escalation due ms, escalation ttl ms, then the r, m and e pairs,
 * then the throttle section (core/digest/throttle-lua.ts: t, and when t > 0 its
 * windows and which deliveries each may hold), then the deliveries (journal
 * enqueue block).
 * Returns {'ok', n deliveries, h holds} | {'duplicate', first entry} | {'gone'}.
 */
const ROUTE_ONE = `
local kin, kevents, kdead, kescalations, kdigests, kseq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local group, dedupe, retention, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
${ENQUEUE_LUA}${THROTTLE_LUA}
local function slice(from, count)
  local out = {}
  for i = 1, count * 2 do out[i] = ARGV[from + i] end
  return out
end
local function route_one(k, a)
local krecord, kproducer, kescalation = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
local entry = ARGV[a + 3]
-- Read-only guard first and the acknowledgement last: Redis does not roll a
-- script back, so an error half-way must leave the entry pending, not lost.
if #redis.call('XPENDING', kin, group, entry, entry, 1) == 0 then return {'gone'} end
if kproducer ~= kin then
  local first = redis.call('GET', kproducer)
  if first then
    redis.call('XADD', kevents, 'MAXLEN', '~', maxlen, '*', 'type', 'duplicate', 'entry', entry, 'first', first)
    redis.call('XACK', kin, group, entry)
    redis.call('XDEL', kin, entry)
    return {'duplicate', first}
  end
end
local r, m, e = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
local record, dead, escalation = slice(a + 8, r), slice(a + 8 + r * 2, m), slice(a + 8 + (r + m) * 2, e)
local throttle = throttle_plan(k + 3, a + 8 + (r + m + e) * 2)
local block = throttle.block
local n = 0
if journal_block_size(block) > 0 then n = journal_enqueue_block(k + 3 + throttle.windows, block, throttle.keep) end
local held = throttle_apply(throttle, entry, kseq, kdigests, krecord, kevents, maxlen)
if n > 0 or held > 0 then
  if kproducer ~= kin then redis.call('SET', kproducer, entry, 'PX', dedupe) end
  if held > 0 and r > 0 then record[2] = throttle_record_meta(throttle, record[2]) end
  redis.call('HSET', krecord, unpack(record))
  redis.call('PEXPIRE', krecord, retention)
  redis.call('XADD', kevents, 'MAXLEN', '~', maxlen, '*', 'type', 'routed', 'entry', entry, 'deliveries', n, 'held', held)
  -- A message partly or wholly held for a digest arms no escalation: its held targets never saw it.
  if e > 0 and n > 0 and held == 0 then
    redis.call('HSET', kescalation, unpack(escalation))
    redis.call('PEXPIRE', kescalation, ARGV[a + 8])
    redis.call('ZADD', kescalations, ARGV[a + 7], entry)
  end
end
if m > 0 then
  local id = redis.call('XADD', kdead, '*', unpack(dead))
  redis.call('XADD', kevents, 'MAXLEN', '~', maxlen, '*', 'type', 'dead', 'stage', 'ingress', 'entry', entry, 'dead', id)
end
redis.call('XACK', kin, group, entry)
redis.call('XDEL', kin, entry)
return {'ok', tostring(n), tostring(held)}
end
`;

/**
 * Entries of a batch in one call (core/ingress/router.ts sends a batch as a
 * few such calls). KEYS: in, events, dead, escalations index, digests
 * index, digest id counter (every entry's), then each entry's own: message
 * record, producer-id key, escalation hash, throttle windows, deliveries.
 * ARGV: group, dedupe ttl ms, record ttl ms, events maxlen (every entry's),
 * the entry routed just before the call's first by the call before it ('' for
 * none), then for each entry its own key count, its own argument count, then
 * the entry and the rest of its arguments, from r on. Entries go in order and
 * the first that fails ends the call ({'error', reason} in its place, nothing
 * after it tried); a call whose previous entry is still pending (failed in
 * the call before, or refused with it) does nothing ({{'later', that entry}}):
 * what follows a failed entry stays pending behind it, so the order of the
 * stream holds whatever Redis refuses.
 */
const ROUTE = `${ROUTE_ONE}${ERROR_TEXT_LUA}
local before = ARGV[5]
if before ~= '' and #redis.call('XPENDING', kin, group, before, before, 1) > 0 then return {{'later', before}} end
local out, k, a = {}, 6, 5
while a < #ARGV do
  local nk, na = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local ok, reply = pcall(route_one, k, a)
  if not ok then
    out[#out + 1] = {'error', error_text(reply)}
    return out
  end
  out[#out + 1] = reply
  k, a = k + nk, a + 2 + na
end
return out
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** KEYS and ARGV as two arrays, which ioredis flattens into the call (core/ingress/router.ts). */
    route(numKeys: number, keys: readonly string[], args: ReadonlyArray<string | number>): Result<Array<[string, string?, string?]>, Context>;
  }
}

export const routeScripts = { route: ROUTE };
