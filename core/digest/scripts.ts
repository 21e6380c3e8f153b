/**
 * The digest's own Lua scripts, run by whichever hub's digester finds a
 * window due. SEAL closes the window (no later message joins it: the next one
 * opens a new window); SEND queues the sealed digest's deliveries, once: it
 * acts only on a digest still `sealed`, so two hubs, or one that crashed
 * between the two calls and its successor, send each digest exactly once.
 */
import type { Result } from 'ioredis';
import { ENQUEUE_LUA } from '../journal/enqueue.ts';
import { THROTTLE_LUA } from './throttle-lua.ts';

/**
 * KEYS: digests index, the window's pointer (`<prefix>:throttle:<group>:<key>`).
 * ARGV: digest key prefix, digest id, now ms.
 * Returns 'sealed' | 'empty' (nothing held: deleted, nothing to send) | 'gone' (not open) | 'not due'.
 */
const SEAL = `${THROTTLE_LUA}
local due = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not due or tonumber(due) > tonumber(ARGV[3]) then return 'not due' end
return throttle_seal(ARGV[1], ARGV[2], KEYS[2], KEYS[1], ARGV[3])
`;

/**
 * KEYS: digests index, digest hash, the digest's message record, events, then its deliveries (journal enqueue
 *       block: a digest takes its place at the end of each target's order, as any delivery).
 * ARGV: digest id, now ms, events maxlen, record ttl ms, the record's meta field and json, then the block.
 * Returns {'sent', n deliveries} | {'open'} (not sealed yet) | {'gone', state}.
 */
const SEND = `${ENQUEUE_LUA}
local id, now = ARGV[1], ARGV[2]
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'open' then return {'open'} end
if state ~= 'sealed' then
  redis.call('ZREM', KEYS[1], id)
  return {'gone', state or 'expired'}
end
local n = journal_enqueue_block(4, 6)
redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('HSET', KEYS[2], 'state', 'sent', 'sentAt', now, 'deliveries', n)
for _, k in ipairs({KEYS[2], KEYS[2] .. ':routes', KEYS[2] .. ':held'}) do redis.call('PEXPIRE', k, ARGV[4]) end
redis.call('ZREM', KEYS[1], id)
local info = redis.call('HMGET', KEYS[2], 'group', 'key', 'count')
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'type', 'digest', 'entry', id, 'group', info[1], 'key', info[2], 'count', info[3], 'deliveries', n)
return {'sent', tostring(n)}
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    digestSeal(numKeys: number, ...args: Array<string | number>): Result<string, Context>;
    digestSend(numKeys: number, ...args: Array<string | number>): Result<[string, string?], Context>;
  }
}

/** The digest's scripts by command name, registered on a connection by the composition root. */
export const digestScripts = { digestSeal: SEAL, digestSend: SEND };
