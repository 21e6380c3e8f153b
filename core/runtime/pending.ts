import type { Redis } from 'ioredis';

/**
 * A worker's view of what Redis lists as pending to it. Deliveries are held
 * in the worker's memory, but only the consumer group's pending list says who
 * may make them: an entry taken over by another worker, or read again by a
 * group an operator destroyed and made anew, must not be made here as well.
 */

/** Whether `entry` is still pending to `consumer` (not settled, not taken over, its group not destroyed). */
export async function pendingTo(redis: Redis, stream: string, group: string, consumer: string, entry: string): Promise<boolean> {
  try {
    const rows = (await redis.xpending(stream, group, entry, entry, 1)) as Array<[string, string, number, number]>;
    return rows[0]?.[1] === consumer;
  } catch (err) {
    if ((err as Error).message.includes('NOGROUP')) return false;
    throw err;
  }
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

/**
 * Set the idle time of those of `ids` still pending to `consumer`: 0 keeps a
 * live worker's waiting deliveries from being taken over as if it had died;
 * {@link HANDED_BACK_IDLE_MS} hands them back to whoever claims next.
 * Entries pending to another consumer are left to it. Resolves with how many were set.
 */
export async function setIdle(redis: Redis, stream: string, group: string, consumer: string, ids: string[], idleMs: number): Promise<number> {
  let count = 0;
  for (let i = 0; i < ids.length; i += 1000) {
    count += (await redis.eval(CLAIM_MINE, 1, stream, group, consumer, idleMs, ...ids.slice(i, i + 1000))) as number;
  }
  return count;
}

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

/** Drop every stale head of a target's order list in one step; resolves with how many. */
export async function dropStaleHeads(redis: Redis, orderList: string, stream: string): Promise<number> {
  return (await redis.eval(DROP_STALE_HEADS, 2, orderList, stream)) as number;
}
