import type { Redis, Result } from 'ioredis';
import { HOLDER_OF_LUA } from '../journal/scripts.ts';
import type { Scripts } from '../redis/connect.ts';

/**
 * A worker's view of what Redis lists as pending to it. Deliveries are held
 * in the worker's memory, but only the consumer group's pending list says who
 * may make them: an entry taken over by another worker, or read again by a
 * group an operator destroyed and made anew, must not be made here as well.
 */

// How many entries a consumer of a group has pending.
const PENDING_COUNT_LUA = `
local function pending_count(stream, group, consumer)
  for _, pending in ipairs(redis.call('XPENDING', stream, group)[4] or {}) do
    if pending[1] == consumer then return tonumber(pending[2]) end
  end
  return 0
end
`;

/**
 * Lua: `begin_one(w, stream, mark, order, waiters, entry)`, whether the entry may be made now. First (when asked:
 * an order list other than the stream) it heads its target's order list, i.e. every older delivery to that target
 * is settled, wherever it was being made (an entry not in the list at all, routed before lists existed, has nothing
 * to wait for); then it is pending to this consumer, and no other consumer is making it right now. A delivery being
 * made is marked (`<stream>:making:<entry>`, for about one attempt): a group destroyed and made anew forgets who
 * holds what, and its new reader must not make the same delivery while the first attempt is still under way. Under
 * memory pressure the mark is skipped (pcall): the delivery goes on, only that protection is lost for the moment.
 * A consumer told to wait for an older delivery is put on the list's waiters (its wake channel, for a minute), in
 * the same step, so that the settling of that head (settle_one, core/journal/scripts.ts) cannot pass unseen: it
 * wakes the waiter at once instead of at its next poll. But first, when the head is pending to another consumer
 * that listens on its wake channel (`w.prefix` .. its name), the delivery is handed to that consumer instead
 * (XCLAIM, and the entry's id on that channel): a target's deliveries then stay with the worker making them, one
 * after another, rather than alternating between workers that each wait for the other's (two workers were slower
 * than one). Not to a consumer that has `w.below` deliveries pending already: a worker holds what it is handed in
 * memory, and another reading on and handing over could otherwise move a whole backlog into it.
 * `w`: group, consumer, mark ttl ms, its wake channel, the wake channels' prefix ('' for no hand-over), that bound.
 * Returns {1} go, {0} not ours, {-1} wait (being made elsewhere), {2, head} an older delivery heads the list,
 * {3, holder} handed to the consumer holding the head, {-2, error} Redis refused.
 * Needs holder_of (HOLDER_OF_LUA) before it.
 */
export const BEGIN_LUA = `${PENDING_COUNT_LUA}
local function begin_one(w, stream, mark, order, waiters, entry)
  if order ~= stream then
    local head = redis.call('LINDEX', order, 0)
    if head and head ~= entry and redis.call('LPOS', order, entry) then
      local holder = w.prefix ~= '' and holder_of(stream, w.group, head)
      if holder and holder ~= w.consumer and holder_of(stream, w.group, entry) == w.consumer and pending_count(stream, w.group, holder) < w.below then
        -- PUBLISH says how many heard it: nobody (the holder does not listen, or may not) means no hand-over.
        local heard = redis.pcall('PUBLISH', w.prefix .. holder, entry)
        if type(heard) == 'number' and heard > 0 then
          redis.call('XCLAIM', stream, w.group, holder, 0, entry, 'JUSTID')
          return {3, holder}
        end
      end
      redis.pcall('SADD', waiters, w.wake)
      redis.pcall('PEXPIRE', waiters, 60000)
      return {2, head}
    end
  end
  local rows = redis.pcall('XPENDING', stream, w.group, entry, entry, 1)
  if rows.err then
    if string.find(rows.err, 'NOGROUP') then return {0} end
    return {-2, rows.err}
  end
  local row = rows[1]
  if not row or row[2] ~= w.consumer then return {0} end
  local maker = redis.call('GET', mark)
  if maker and maker ~= w.consumer then return {-1} end
  redis.pcall('SET', mark, w.consumer, 'PX', w.ttl)
  return {1}
end
`;

// After a delivery was handed over (begin_one's {3, holder}), the same consumer's deliveries queued behind it
// for the same target go the same way in one step, rather than each with a begin of its own: those of ARGV[6..]
// still pending to ARGV[2], while ARGV[3] has fewer than ARGV[4] pending, their ids on its wake channel ARGV[5]
// (one message, space-separated), if it heard. KEYS: stream. ARGV: group, consumer, holder, most pending to the
// holder, the holder's wake channel, ids. Returns the ids handed over.
const HAND_OVER = `${HOLDER_OF_LUA}${PENDING_COUNT_LUA}
local room = tonumber(ARGV[4]) - pending_count(KEYS[1], ARGV[1], ARGV[3])
local claim = {'XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0}
local ids = {}
for i = 6, #ARGV do
  if #ids >= room then break end
  if holder_of(KEYS[1], ARGV[1], ARGV[i]) == ARGV[2] then
    ids[#ids + 1] = ARGV[i]
    claim[#claim + 1] = ARGV[i]
  end
end
if #ids == 0 then return {} end
local heard = redis.pcall('PUBLISH', ARGV[5], table.concat(ids, ' '))
if type(heard) ~= 'number' or heard == 0 then return {} end
claim[#claim + 1] = 'JUSTID'
redis.call(unpack(claim))
return ids
`;

// Atomic, so that an entry another consumer just took is never taken back from it.
const CLAIM_MINE = `
local mine = {}
for i = 4, #ARGV do
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if row and row[2] == ARGV[2] then mine[#mine + 1] = ARGV[i] end
end
for i = 1, #mine, 500 do
  local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
  for j = i, math.min(i + 499, #mine) do args[#args + 1] = mine[j] end
  args[#args + 1] = 'IDLE'
  args[#args + 1] = ARGV[3]
  args[#args + 1] = 'JUSTID'
  redis.call(unpack(args))
end
return #mine
`;

// A delivery in the order list but no longer in the stream was settled without leaving the list
// (a purged dead letter, a deleted or trimmed stream): nobody will ever settle it.
const DROP_STALE_HEADS = `
local dropped = 0
while dropped < 100000 do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head or #redis.call('XRANGE', KEYS[2], head, head) > 0 then break end
  redis.call('LPOP', KEYS[1])
  dropped = dropped + 1
end
return dropped
`;

/** The worker's scripts, registered on the hub's connection by the composition root (core/container.ts). */
export const pendingScripts: Scripts = { handOver: HAND_OVER, claimMine: CLAIM_MINE, dropStaleHeads: DROP_STALE_HEADS };

declare module 'ioredis' {
  interface RedisCommander<Context> {
    handOver(numKeys: 1, stream: string, group: string, consumer: string, holder: string, below: number, holderWake: string, ...ids: string[]): Result<string[], Context>;
    claimMine(numKeys: 1, stream: string, group: string, consumer: string, idleMs: number, ...ids: string[]): Result<number, Context>;
    dropStaleHeads(numKeys: 2, orderList: string, stream: string): Result<number, Context>;
  }
}

/** The mark of a delivery being made. */
export function makingKey(stream: string, entry: string): string {
  return `${stream}:making:${entry}`;
}

/**
 * Hand `ids` (queued here behind a delivery just handed to `holder`, same target) to `holder` too, those still
 * pending to `consumer`, while `holder` has fewer than `below` pending. Resolves with the ids handed over.
 */
export async function handOver(redis: Redis, at: { stream: string; group: string; consumer: string; wakePrefix: string }, holder: string, ids: string[], below: number): Promise<string[]> {
  if (ids.length === 0) return [];
  return redis.handOver(1, at.stream, at.group, at.consumer, holder, below, at.wakePrefix + holder, ...ids.slice(0, 500));
}

/** Every entry pending to `consumer`, oldest first. */
export async function ownPending(redis: Redis, stream: string, group: string, consumer: string): Promise<string[]> {
  const ids: string[] = [];
  for (let from = '-'; ; ) {
    const rows = (await redis.xpending(stream, group, from, '+', 1000, consumer)) as Array<[string, string, number, number]>;
    for (const [id] of rows) ids.push(id);
    if (rows.length < 1000) return ids;
    from = `(${rows.at(-1)![0]}`;
  }
}

/** A year: an idle time no `delivery.claimIdle` reaches, so that the next XAUTOCLAIM of any consumer takes the entry. */
export const HANDED_BACK_IDLE_MS = 365 * 24 * 3600 * 1000;

/**
 * Set the idle time of those of `ids` still pending to `consumer`: 0 keeps a
 * live worker's waiting deliveries from being taken over as if it had died;
 * {@link HANDED_BACK_IDLE_MS} hands them back to whoever claims next.
 * Entries pending to another consumer are left to it. Resolves with how many were set.
 */
export async function setIdle(redis: Redis, stream: string, group: string, consumer: string, ids: string[], idleMs: number): Promise<number> {
  let count = 0;
  for (let i = 0; i < ids.length; i += 1000) {
    count += await redis.claimMine(1, stream, group, consumer, idleMs, ...ids.slice(i, i + 1000));
  }
  return count;
}

/** Drop every stale head of a target's order list in one step; resolves with how many. */
export async function dropStaleHeads(redis: Redis, orderList: string, stream: string): Promise<number> {
  return redis.dropStaleHeads(2, orderList, stream);
}
