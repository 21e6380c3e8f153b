/**
 * The throttle part of the router's ROUTE script (core/ingress/route-script.ts):
 * whether a message with a `key` is held in its groups' open windows, and the
 * windows' bookkeeping, in the same atomic call as the fan-out. A window is a
 * digest in the making: `<prefix>:throttle:<group>:<key>` names the open one's
 * id, `<prefix>:digest:<id>` holds its state (`open` → `sealed` → `sent`),
 * counts and latest message, with `:routes` and `:held` beside it, and the
 * digests index (`<prefix>:digests`) has it at the time it closes.
 */
import { RouteMap } from '../mapping/route-map.ts';
import type { Mapping, Route } from '../mapping/validate.ts';
import type { Keys } from '../redis/keys.ts';

/** The record field (of a held message) that names the digest that carries it, per group. */
export const HELD_FIELD = 'held:';

/**
 * `throttle_plan(kw, th)`: read-only, before anything is written: for each
 * throttled group of the message (its window pointer at KEYS[kw + g], its
 * section from ARGV[th + 1]) whether the message is held in an open window,
 * and which deliveries of the block still go out now (`keep`).
 * `throttle_apply(plan, entry, seq, index, record, events, maxlen)`: after
 * the enqueue: holds (count, first and last time, latest message, routes,
 * the entry in the held list, a `folded` event, the message record's field),
 * seals a window found past its close time, opens a window for each group
 * the message was not held in. Returns how many windows hold it.
 * `throttle_seal(prefix, id, pointer, index, now)`: close an open window: an
 * empty one is deleted (it sends nothing), one that holds messages is sealed
 * and stays in the index until its digest is sent.
 */
export const THROTTLE_LUA = `
local function throttle_seal(prefix, id, pointer, index, now)
  local d = prefix .. id
  if redis.call('GET', pointer) == id then redis.call('DEL', pointer) end
  if redis.call('HGET', d, 'state') ~= 'open' then return 'gone' end
  if tonumber(redis.call('HGET', d, 'count') or '0') == 0 then
    redis.call('DEL', d, d .. ':routes', d .. ':held')
    redis.call('ZREM', index, id)
    return 'empty'
  end
  redis.call('HSET', d, 'state', 'sealed', 'sealedAt', now)
  return 'sealed'
end
local function throttle_plan(kw, th)
  local t = tonumber(ARGV[th + 1])
  local plan = {windows = t, block = th + 1, groups = {}}
  if t == 0 then return plan end
  plan.now = tonumber(ARGV[th + 2])
  plan.prefix, plan.field = ARGV[th + 3], ARGV[th + 4]
  plan.latest = {'to', ARGV[th + 5], 'subject', ARGV[th + 6], 'body', ARGV[th + 7], 'format', ARGV[th + 8]}
  local a = th + 8
  for g = 1, t do
    local w = {pointer = KEYS[kw + g], group = ARGV[a + 1], key = ARGV[a + 2], windowMs = tonumber(ARGV[a + 3]), routes = {}}
    local rc = tonumber(ARGV[a + 4])
    for i = 1, rc do w.routes[i] = ARGV[a + 4 + i] end
    a = a + 4 + rc
    local id = redis.call('GET', w.pointer)
    if id then
      local state = redis.call('HMGET', plan.prefix .. id, 'state', 'due')
      if state[1] == 'open' and tonumber(state[2]) > plan.now then w.hold = id else w.stale = id end
    end
    plan.groups[g] = w
  end
  local nd = tonumber(ARGV[a + 1])
  plan.keep = {}
  for i = 1, nd do
    local reach = ARGV[a + 1 + i]
    local keep = reach == '*'
    if not keep then
      for g in string.gmatch(reach, '%d+') do
        if not plan.groups[tonumber(g)].hold then keep = true end
      end
    end
    plan.keep[i] = keep
  end
  plan.block = a + 1 + nd
  return plan
end
local function throttle_apply(plan, entry, seq, index, record, events, maxlen)
  local held = 0
  for _, w in ipairs(plan.groups) do
    if w.hold then
      local d = plan.prefix .. w.hold
      redis.call('HINCRBY', d, 'count', 1)
      redis.call('HSETNX', d, 'first', plan.now)
      redis.call('HSET', d, 'last', plan.now, 'latest', entry, unpack(plan.latest))
      redis.call('RPUSH', d .. ':held', entry)
      if #w.routes > 0 then redis.call('SADD', d .. ':routes', unpack(w.routes)) end
      redis.call('HSET', record, plan.field .. w.group, w.hold)
      redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'type', 'folded', 'entry', entry, 'group', w.group, 'key', w.key, 'digest', w.hold)
      held = held + 1
    else
      if w.stale then throttle_seal(plan.prefix, w.stale, w.pointer, index, plan.now) end
      local id = 'digest-' .. redis.call('INCR', seq)
      local due = plan.now + w.windowMs
      redis.call('SET', w.pointer, id)
      redis.call('HSET', plan.prefix .. id, 'state', 'open', 'group', w.group, 'key', w.key, 'windowMs', w.windowMs,
        'opened', plan.now, 'openedBy', entry, 'due', due, 'count', 0)
      redis.call('ZADD', index, due, id)
    end
  end
  return held
end
local function throttle_record_meta(plan, json)
  if not plan.keep then return json end
  local meta = cjson.decode(json)
  local kept = {}
  for i, d in ipairs(meta.deliveries or {}) do
    if plan.keep[i] then kept[#kept + 1] = d end
  end
  if #kept == 0 then meta.deliveries = nil else meta.deliveries = kept end
  return cjson.encode(meta)
end
`;

/** A route as a digest's routes set keeps it: `[channel, target]`, the target normalized, and as written when that differs. */
export type DigestRoute = [channel: string, target: string, address?: string];

export interface ThrottleSection {
  /** The throttle windows' pointers, after the fixed keys. */
  keys: string[];
  args: Array<string | number>;
}

/** No group of the message throttles it (shared: never written to). */
export const NO_THROTTLE: ThrottleSection = { keys: [], args: [0] };

/**
 * The throttle section of one message's ROUTE call: for each group of `to`
 * with a `throttle` (and targets for this message), its window and routes;
 * for each delivery (in the order of `routes`, the block's), which of those
 * groups reach it, or `*` when a group without throttle reaches it too (then
 * it goes out now whatever the windows say).
 */
export function throttleSection(
  keys: Keys,
  mapping: Mapping | undefined,
  message: { to: string[]; key?: string; subject?: string; body: string; format: string; channels?: ReadonlySet<string> },
  routes: readonly Route[],
  now: number,
): ThrottleSection {
  if (!message.key || !mapping || routes.length === 0) return NO_THROTTLE;
  const reach = new RouteMap<Set<number> | '*'>();
  const windows: Array<{ group: string; windowMs: number; routes: Route[] }> = [];
  for (const name of message.to) {
    const group = mapping.groups.get(name);
    if (!group) continue;
    const own = group.routes.filter((r) => !message.channels || message.channels.has(r.channel));
    if (own.length === 0) continue;
    if (!group.throttle) {
      for (const r of own) reach.set(r, '*');
      continue;
    }
    windows.push({ group: name, windowMs: group.throttle.windowMs, routes: own });
    for (const r of own) {
      const seen = reach.get(r);
      if (seen === '*') continue;
      reach.set(r, (seen ?? new Set()).add(windows.length));
    }
  }
  if (windows.length === 0) return NO_THROTTLE;
  const stored = (r: Route): string => JSON.stringify(r.receiver === r.target ? [r.channel, r.receiver] : [r.channel, r.receiver, r.target]);
  return {
    keys: windows.map((w) => keys.throttleWindow(w.group, message.key!)),
    args: [
      windows.length, now, keys.digest(''), HELD_FIELD,
      message.to.join(','), message.subject ?? '', message.body, message.format,
      ...windows.flatMap((w) => [w.group, message.key!, w.windowMs, w.routes.length, ...w.routes.map(stored)]),
      routes.length,
      ...routes.map((r) => {
        const seen = reach.get(r);
        return seen === undefined || seen === '*' ? '*' : [...seen].join(',');
      }),
    ],
  };
}
