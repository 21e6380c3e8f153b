/**
 * The one way a delivery enters its channel's stream, as a Lua fragment that
 * every script which enqueues deliveries starts with: the router's ROUTE, the
 * escalator's FIRE, the journal's REPLAY (and whatever enqueues next). A
 * delivery is XADDed to its channel's stream and its stream id RPUSHed onto its
 * target's order list in the same script: nothing can come between the two, so
 * every order list is in stream order, whoever enqueues at the same time.
 */
import { pushPairs } from '../redis/fields.ts';
import type { Keys } from '../redis/keys.ts';
import { type QueuedDelivery, type SharedFields, ownFields } from './delivery.ts';

/** `unpack` in Redis's Lua has a stack limit (about 8,000): an entry must stay well under it. */
const MAX_XADD_ARGS = 7000;

/**
 * Redis does not roll a script back: when a write fails (a key of the wrong
 * type), what this fragment wrote before it is taken back, and the script
 * fails with nothing enqueued.
 * `journal_enqueue(stream, order, own, shared)`: one entry of `own` then
 * `shared` field pairs; `order` the stream itself for a stream without order lists (ingress): not '', which a
 * Redis Cluster refuses as a key name.
 * `journal_enqueue_block(kb, ab, keep)`: the deliveries {@link enqueueBlock} laid
 * out from KEYS[kb + 1] and ARGV[ab + 1]; with `keep` (a table of booleans by
 * index), only those it keeps; returns how many it enqueued.
 * `journal_block_size(ab)`: that count, read before enqueuing.
 */
export const ENQUEUE_LUA = `
local function journal_append(stream, order, fields, written)
  if #fields + 2 > ${MAX_XADD_ARGS} then return {err = 'a delivery entry of ' .. (#fields + 2) .. ' arguments is over the limit of ${MAX_XADD_ARGS}'} end
  local id = redis.pcall('XADD', stream, '*', unpack(fields))
  if type(id) == 'table' then return id end
  written[#written + 1] = {stream, id}
  if order ~= stream then
    local pushed = redis.pcall('RPUSH', order, id)
    if type(pushed) == 'table' then return pushed end
    written[#written] = {stream, id, order}
  end
  return id
end
local function journal_undo(written, failure)
  for i = #written, 1, -1 do
    local w = written[i]
    redis.call('XDEL', w[1], w[2])
    if w[3] then redis.call('LREM', w[3], -1, w[2]) end
  end
  return error(failure)
end
local function journal_enqueue(stream, order, own, shared)
  local fields = {}
  for i = 1, #own do fields[#fields + 1] = own[i] end
  for i = 1, #shared do fields[#fields + 1] = shared[i] end
  local written = {}
  local id = journal_append(stream, order, fields, written)
  if type(id) == 'table' then journal_undo(written, id) end
  return id
end
local function journal_block_size(ab)
  return tonumber(ARGV[ab + 1])
end
local function journal_enqueue_block(kb, ab, keep)
  local n, k = tonumber(ARGV[ab + 1]), tonumber(ARGV[ab + 2])
  local a = ab + 2
  local shared = {}
  for i = 1, k * 2 do shared[i] = ARGV[a + i] end
  a = a + k * 2
  local written = {}
  local enqueued = 0
  for i = 1, n do
    local p = tonumber(ARGV[a + 1])
    if keep == nil or keep[i] then
      local fields = {}
      for j = 1, p * 2 do fields[j] = ARGV[a + 1 + j] end
      for j = 1, #shared do fields[#fields + 1] = shared[j] end
      local id = journal_append(KEYS[kb + i], KEYS[kb + n + i], fields, written)
      if type(id) == 'table' then journal_undo(written, id) end
      enqueued = enqueued + 1
    end
    a = a + 1 + p * 2
  end
  return enqueued
end
`;

export interface EnqueueBlock {
  /** Each delivery's stream, then each one's order list. */
  keys: string[];
  /** n, k, the k shared pairs, then each delivery's p and its p pairs. */
  args: Array<string | number>;
}

/** The KEYS and ARGV of one message's deliveries, as `journal_enqueue_block` reads them; they go last in the script's KEYS and ARGV. */
export function enqueueBlock(keys: Keys, deliveries: readonly QueuedDelivery[], shared: SharedFields): EnqueueBlock {
  const block: EnqueueBlock = { keys: [], args: [] };
  appendEnqueueBlock(block, keys, deliveries, shared);
  return block;
}

/** {@link enqueueBlock} written onto the end of a script call's KEYS and ARGV (the router's, built in place). */
export function appendEnqueueBlock(call: EnqueueBlock, keys: Keys, deliveries: readonly QueuedDelivery[], shared: SharedFields): void {
  for (const d of deliveries) call.keys.push(keys.deliver(d.channel));
  for (const d of deliveries) call.keys.push(keys.order(d.channel, d.target));
  call.args.push(deliveries.length);
  pushCountedPairs(call.args, shared);
  for (const d of deliveries) pushCountedPairs(call.args, ownFields(d));
}

/** A count of pairs, then the pairs: the count filled in once they are written. */
function pushCountedPairs(args: Array<string | number>, fields: Record<string, string | undefined>): void {
  const at = args.push(0) - 1;
  args[at] = pushPairs(args, fields);
}
