/**
 * The escalation's Lua scripts. Each runs atomically, which is what makes a
 * due time fire exactly once however many hub processes poll the index, and
 * what makes an acknowledgement and a firing exclude each other: every change
 * to an escalation bumps its `version`, and FIRE only acts on the version its
 * caller read.
 */
import type { Result } from 'ioredis';
import { ENQUEUE_LUA } from '../journal/enqueue.ts';

/**
 * Claim a due escalation and fire one round of it, or close it.
 * KEYS: escalations index, escalation hash, events, then the round's deliveries (journal enqueue block:
 *       a reminder joins the end of its target's order, as any delivery).
 * ARGV: entry, version read, now ms, mode (fire|close), next due ms ('' when this is the last round),
 *       final state (when it ends), events maxlen, the escalation's deliveries so far as json (for `hub status`),
 *       then the deliveries (journal enqueue block).
 * Returns {'fired', round} | {'closed', state} | {'stale'} | {'gone', why}.
 */
const FIRE = `${ENQUEUE_LUA}
local entry, version, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local state = redis.call('HGET', KEYS[2], 'state')
if state ~= 'armed' then
  redis.call('ZREM', KEYS[1], entry)
  return {'gone', state or 'expired'}
end
if redis.call('HGET', KEYS[2], 'version') ~= version then return {'stale'} end
local due = redis.call('ZSCORE', KEYS[1], entry)
if not due or tonumber(due) > now then return {'gone', 'not due'} end
local mode, nextDue, final, maxlen = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
redis.call('HINCRBY', KEYS[2], 'version', 1)
if mode == 'close' then
  redis.call('ZREM', KEYS[1], entry)
  redis.call('HSET', KEYS[2], 'state', final, 'endedAt', now)
  redis.call('HDEL', KEYS[2], 'due')
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', 'type', 'escalation', 'entry', entry, 'state', final)
  return {'closed', final}
end
local n = journal_enqueue_block(3, 8)
local round = redis.call('HINCRBY', KEYS[2], 'round', 1)
redis.call('HSET', KEYS[2], 'sent', ARGV[8], 'lastAt', now)
if nextDue ~= '' then
  redis.call('ZADD', KEYS[1], nextDue, entry)
  redis.call('HSET', KEYS[2], 'due', nextDue)
else
  redis.call('ZREM', KEYS[1], entry)
  redis.call('HSET', KEYS[2], 'state', final, 'endedAt', now)
  redis.call('HDEL', KEYS[2], 'due')
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', 'type', 'escalated', 'entry', entry, 'round', round, 'deliveries', n)
return {'fired', tostring(round)}
`;

/**
 * Record an acknowledgement. A reaction or a reply ends the escalation. A
 * read ends it too, unless it has per-person routes (`users`) and some of
 * those people have not read yet: then only they are nagged from now on.
 * KEYS: escalations index, escalation hash, message record, events.
 * ARGV: entry, by, how, at ms, events maxlen, ack json (kept in the message record, first one wins), the record's field for it.
 * Returns 'cancelled' | 'partial' | 'none' (no escalation) | the state it had already ended in.
 */
const ACKNOWLEDGE = `
local entry, by, how, at, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('HSETNX', KEYS[3], ARGV[7], ARGV[6]) end
local state = redis.call('HGET', KEYS[2], 'state')
if not state then return 'none' end
if state ~= 'armed' then return state end
if how == 'read' then
  local fresh = redis.call('HSETNX', KEYS[2], 'read:' .. by, at)
  local users = redis.call('HGET', KEYS[2], 'users')
  if users then
    local left = 0
    for user in pairs(cjson.decode(users)) do
      if redis.call('HEXISTS', KEYS[2], 'read:' .. user) == 0 then left = left + 1 end
    end
    if left > 0 then
      if fresh == 1 then
        redis.call('HINCRBY', KEYS[2], 'version', 1)
        redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', 'type', 'read', 'entry', entry, 'by', by)
      end
      return 'partial'
    end
  end
end
redis.call('ZREM', KEYS[1], entry)
redis.call('HINCRBY', KEYS[2], 'version', 1)
redis.call('HSET', KEYS[2], 'state', 'acknowledged', 'ackBy', by, 'ackHow', how, 'ackAt', at, 'endedAt', at)
redis.call('HDEL', KEYS[2], 'due')
redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', 'type', 'acknowledged', 'entry', entry, 'by', by, 'how', how)
return 'cancelled'
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    escalationFire(numKeys: number, ...args: (string | number)[]): Result<[string, string?], Context>;
    escalationAcknowledge(numKeys: number, ...args: (string | number)[]): Result<string, Context>;
  }
}

/** The escalation's scripts by command name, registered on a connection by the composition root. */
export const escalationScripts = { escalationFire: FIRE, escalationAcknowledge: ACKNOWLEDGE };
