/**
 * The journal's own scripts: settling deliveries (SETTLE_LUA) and replaying dead
 * letters (REPLAY). Each runs atomically; each first checks that what it acts
 * on is still there, so two workers or two replays racing for one entry or
 * letter cannot both act on it.
 */
import type { Result } from 'ioredis';
import { ERROR_TEXT_LUA } from '../redis/lua-error.ts';
import { ENQUEUE_LUA } from './enqueue.ts';

/**
 * Lua: the consumer of `group` an entry of `stream` is pending to, or false (not pending, or no such group).
 * The one answer to "who holds this delivery", for settle_one and the worker's scripts (core/runtime/pending.ts).
 */
export const HOLDER_OF_LUA = `
local function holder_of(stream, group, id)
  local rows = redis.pcall('XPENDING', stream, group, id, id, 1)
  return not rows.err and rows[1] and rows[1][2]
end
`;

/**
 * Lua: `settle_one(s, ka, a)` settles one delivery as if alone: acknowledge it,
 * take it off its target's order list, wake the worker waiting on that list
 * that holds its new head (core/runtime/pending.ts) and drop its attempt mark (unless it will be
 * retried), record its outcome, write its event and dead letter. A delivery no longer pending and gone
 * from its stream was settled by another worker: nothing is written for it.
 * `s`: the call's events and dead streams, consumer group, record ttl ms and events maxlen.
 * Its KEYS at `ka` + 1…5: its deliver stream, message record, target's order list, attempt mark, the list's waiters.
 * Its ARGV at `a` + 1…: stream entry id, the record's field of this delivery, outcome (sent|dead|retrying),
 * record json, k event field pairs, m dead-letter field pairs, then the k pairs, then the m pairs:
 * `settle_size(a)` of them. Needs holder_of (HOLDER_OF_LUA) before it. The worker's one call per tick
 * (core/runtime/tick-call.ts) runs it.
 */
export const SETTLE_LUA = `
local function settle_size(a)
  return 6 + (tonumber(ARGV[a + 5]) + tonumber(ARGV[a + 6])) * 2
end
local function settle_one(s, ka, a)
  local stream, record, order, mark, waiters = KEYS[ka + 1], KEYS[ka + 2], KEYS[ka + 3], KEYS[ka + 4], KEYS[ka + 5]
  local entry, field, outcome, json = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local k, m = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local first = a + 6
  if outcome ~= 'retrying' then
    redis.call('DEL', mark)
    -- Not pending and gone from the stream: another worker settled it. Not pending but still in the
    -- stream: its group was destroyed (and made anew) under it; settled here, or the new group makes it again.
    if redis.call('XACK', stream, s.group, entry) == 0 and #redis.call('XRANGE', stream, entry, entry) == 0 then return end
    redis.call('XDEL', stream, entry)
    redis.call('LREM', order, 1, entry)
    local waiting = redis.call('SMEMBERS', waiters)
    if #waiting > 0 then
      -- Only the worker holding the new head can go now (a wake channel ends with its consumer's name): woken,
      -- the others would ask, find the head another's, and wait again, at every delivery of a chain another
      -- worker makes. A head held by nobody (not yet read, or gone) wakes them all.
      local head = redis.call('LINDEX', order, 0)
      local holder = head and holder_of(stream, s.group, head)
      local ending = holder and (':' .. holder)
      for _, wake in ipairs(waiting) do
        if not ending or string.sub(wake, -#ending) == ending then
          redis.call('SREM', waiters, wake)
          -- A user without pub/sub (an older ACL line) only loses the wake-up: its waiters ask again on their own.
          redis.pcall('PUBLISH', wake, order)
        end
      end
    end
  end
  redis.call('HSET', record, field, json)
  if redis.call('PTTL', record) < 0 then redis.call('PEXPIRE', record, s.ttl) end
  local event = {s.events, 'MAXLEN', '~', s.maxlen, '*'}
  for j = 1, k * 2 do event[#event + 1] = ARGV[first + j] end
  if m > 0 then
    local dead = {s.dead, '*'}
    for j = 1, m * 2 do dead[#dead + 1] = ARGV[first + k * 2 + j] end
    event[#event + 1] = 'dead'
    event[#event + 1] = redis.call('XADD', unpack(dead))
  end
  redis.call('XADD', unpack(event))
end
`;

/**
 * Replay dead letters, each exactly once however many replays run: a letter
 * still in the dead stream is enqueued (a delivery onto its channel's stream
 * and the end of its target's order list, a message onto the ingress stream)
 * and deleted; one already gone was replayed or purged by someone else.
 * KEYS: dead, then per letter: the stream it goes back to, its order list (the ingress stream again for the ingress stream, which has none).
 * ARGV: per letter: its id in the dead stream, p, then the p field pairs to write.
 * Returns per letter the new entry's id, '' when it was gone, or '!' and why Redis refused it (the letter stays).
 */
const REPLAY = `${ENQUEUE_LUA}${ERROR_TEXT_LUA}
local out = {}
local a = 0
for i = 1, (#KEYS - 1) / 2 do
  local letter, p = ARGV[a + 1], tonumber(ARGV[a + 2])
  local fields = {}
  for j = 1, p * 2 do fields[j] = ARGV[a + 2 + j] end
  a = a + 2 + p * 2
  if #redis.call('XRANGE', KEYS[1], letter, letter) == 0 then
    out[i] = ''
  else
    local ok, id = pcall(journal_enqueue, KEYS[2 * i], KEYS[2 * i + 1], fields, {})
    if ok then
      redis.call('XDEL', KEYS[1], letter)
      out[i] = id
    else
      out[i] = '!' .. error_text(id)
    end
  end
end
return out
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    replayDead(numKeys: number, ...args: Array<string | number>): Result<string[], Context>;
  }
}

export const journalScripts = { replayDead: REPLAY };
