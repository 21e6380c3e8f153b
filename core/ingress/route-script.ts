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

/**
 * One entry's part, `route_one()`: KEYS and ARGV are the entry's own here (locals
 * the batch sets before each entry, read by the journal's and the throttle's
 * fragments as by this part):
 * KEYS: in, events, message record, producer-id key (`in` again when none: a Redis Cluster refuses an empty key name), dead, escalations index, escalation hash,
 *       digests index, digest id counter, then the t throttle windows, then the deliveries (journal enqueue block).
 * ARGV: group, entry, dedupe ttl ms, record ttl ms, events maxlen, r record field pairs, m dead-letter field pairs,
 *       e escalation field pairs (0: no escalation), escalation due ms, escalation ttl ms,
 *       then the r, m and e pairs, then the throttle section (core/digest/throttle-lua.ts: t, and when t > 0
 *       its windows and which deliveries each may hold), then the deliveries (journal enqueue block).
 * Returns {'ok', n deliveries, h holds} | {'duplicate', first entry} | {'gone'}.
 */
const ROUTE_ONE = `
local BATCH_KEYS, BATCH_ARGV = KEYS, ARGV
local KEYS, ARGV = {}, {}
${ENQUEUE_LUA}${THROTTLE_LUA}
local function route_one()
local group, entry = ARGV[1], ARGV[2]
-- Read-only guard first and the acknowledgement last: Redis does not roll a
-- script back, so an error half-way must leave the entry pending, not lost.
if #redis.call('XPENDING', KEYS[1], group, entry, entry, 1) == 0 then return {'gone'} end
local maxlen = ARGV[5]
if KEYS[4] ~= KEYS[1] then
  local first = redis.call('GET', KEYS[4])
  if first then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'type', 'duplicate', 'entry', entry, 'first', first)
    redis.call('XACK', KEYS[1], group, entry)
    redis.call('XDEL', KEYS[1], entry)
    return {'duplicate', first}
  end
end
local r, m, e = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local function slice(from, count)
  local out = {}
  for i = 1, count * 2 do out[i] = ARGV[from + i] end
  return out
end
local record, dead, escalation = slice(10, r), slice(10 + r * 2, m), slice(10 + (r + m) * 2, e)
local throttle = throttle_plan(9, 10 + (r + m + e) * 2)
local block = throttle.block
local n = 0
if journal_block_size(block) > 0 then n = journal_enqueue_block(9 + throttle.windows, block, throttle.keep) end
local held = throttle_apply(throttle, entry, KEYS[9], KEYS[8], KEYS[3], KEYS[2], maxlen)
if n > 0 or held > 0 then
  if KEYS[4] ~= KEYS[1] then redis.call('SET', KEYS[4], entry, 'PX', ARGV[3]) end
  if held > 0 and r > 0 then record[2] = throttle_record_meta(throttle, record[2]) end
  redis.call('HSET', KEYS[3], unpack(record))
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'type', 'routed', 'entry', entry, 'deliveries', n, 'held', held)
  -- A message partly or wholly held for a digest arms no escalation: its held targets never saw it.
  if e > 0 and n > 0 and held == 0 then
    redis.call('HSET', KEYS[7], unpack(escalation))
    redis.call('PEXPIRE', KEYS[7], ARGV[10])
    redis.call('ZADD', KEYS[6], ARGV[9], entry)
  end
end
if m > 0 then
  local id = redis.call('XADD', KEYS[5], '*', unpack(dead))
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'type', 'dead', 'stage', 'ingress', 'entry', entry, 'dead', id)
end
redis.call('XACK', KEYS[1], group, entry)
redis.call('XDEL', KEYS[1], entry)
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
const ROUTE = `${ROUTE_ONE}
local kin, kevents, kdead, kescalations, kdigests, kseq = BATCH_KEYS[1], BATCH_KEYS[2], BATCH_KEYS[3], BATCH_KEYS[4], BATCH_KEYS[5], BATCH_KEYS[6]
local group, dedupe, retention, maxlen, before = BATCH_ARGV[1], BATCH_ARGV[2], BATCH_ARGV[3], BATCH_ARGV[4], BATCH_ARGV[5]
if before ~= '' and #redis.call('XPENDING', kin, group, before, before, 1) > 0 then return {{'later', before}} end
local out, k, a = {}, 6, 5
while a < #BATCH_ARGV do
  local nk, na = tonumber(BATCH_ARGV[a + 1]), tonumber(BATCH_ARGV[a + 2])
  KEYS = {kin, kevents, BATCH_KEYS[k + 1], BATCH_KEYS[k + 2], kdead, kescalations, BATCH_KEYS[k + 3], kdigests, kseq}
  for i = 4, nk do KEYS[6 + i] = BATCH_KEYS[k + i] end
  ARGV = {group, BATCH_ARGV[a + 3], dedupe, retention, maxlen}
  for i = 2, na do ARGV[4 + i] = BATCH_ARGV[a + 2 + i] end
  local ok, reply = pcall(route_one)
  if not ok then
    -- Redis raises a command's error as a string in 7.0, as a table with \`err\` since.
    out[#out + 1] = {'error', type(reply) == 'table' and tostring(reply.err) or tostring(reply)}
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
