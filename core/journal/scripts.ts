/**
 * The journal's own scripts: settling a delivery (SETTLE) and replaying dead
 * letters (REPLAY). Each runs atomically; each first checks that what it acts
 * on is still there, so two workers or two replays racing for one entry or
 * letter cannot both act on it.
 */
import type { Result } from 'ioredis';
import { ENQUEUE_LUA } from './enqueue.ts';

/**
 * Settle one delivery: acknowledge it and take it off its target's order list
 * (unless it will be retried), record its outcome, write its event and dead letter.
 * KEYS: deliver stream, events, message record, dead, the target's order list.
 * ARGV: group, stream entry id, the record's field of this delivery, outcome (sent|dead|retrying), record json,
 *       record ttl ms, events maxlen, k event field pairs, m dead-letter field pairs, then the k pairs, then the m pairs.
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
redis.call('HSET', KEYS[3], ARGV[3], ARGV[5])
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

/**
 * Replay dead letters, each exactly once however many replays run: a letter
 * still in the dead stream is enqueued (a delivery onto its channel's stream
 * and the end of its target's order list, a message onto the ingress stream)
 * and deleted; one already gone was replayed or purged by someone else.
 * KEYS: dead, then per letter: the stream it goes back to, its order list (the ingress stream again for the ingress stream, which has none).
 * ARGV: per letter: its id in the dead stream, p, then the p field pairs to write.
 * Returns per letter the new entry's id, '' when it was gone, or '!' and why Redis refused it (the letter stays).
 */
const REPLAY = `${ENQUEUE_LUA}
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
      out[i] = '!' .. (type(id) == 'table' and id.err or tostring(id))
    end
  end
end
return out
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    settle(numKeys: number, ...args: Array<string | number>): Result<string, Context>;
    replayDead(numKeys: number, ...args: Array<string | number>): Result<string[], Context>;
  }
}

export const journalScripts = { settle: SETTLE, replayDead: REPLAY };
