import { type Redis, ReplyError } from 'ioredis';
import type { HubConfig } from '../config/schema.ts';
import { NO_THROTTLE, type ThrottleSection, throttleSection } from '../digest/throttle-lua.ts';
import { type ArmedEscalation, escalationFor } from '../escalation/arm.ts';
import { type DeadLetter, ingressDeadLetter, messageFields } from '../journal/dead-letter.ts';
import type { QueuedDelivery } from '../journal/delivery.ts';
import { appendEnqueueBlock } from '../journal/enqueue.ts';
import { type MessageMeta, RECORD_META_FIELD } from '../journal/record.ts';
import type { MappingStore } from '../mapping/store.ts';
import type { Keys } from '../redis/keys.ts';
import { pushPairs } from '../redis/fields.ts';
import type { StreamEntry } from '../redis/stream-consumer.ts';
import { type InboundMessage, parseEntry } from './parse-entry.ts';

export const HUB_GROUP = 'hub';

export interface RouteOutcome {
  routed: number;
  dead: number;
  duplicates: number;
  /** Holds in throttle windows (a message held by two groups counts twice). */
  held: number;
}

type RouterDeps = { redis: Redis; keys: Keys; config: HubConfig; mappingStore: MappingStore; channels: ReadonlySet<string> };

/** Why a message whose groups are all known reaches no target: the dead letter's reason, and the HTTP ingress's 422. */
export function noTargets(message: Pick<InboundMessage, 'to' | 'channels'>): string {
  return `${message.to.join(', ')} has no targets${message.channels ? ` on channels ${[...message.channels].join(', ')}` : ''}; add targets to the mapping or change \`channels\``;
}

/** The ROUTE script's KEYS and ARGV for a batch: what every entry shares, then each entry's own part in turn. */
interface RouteCall {
  keys: string[];
  args: Array<string | number>;
}

/** A call with nothing of its own yet; `after`: the entry just before its first, routed by the call before it ('' for none). */
function startCall({ keys, config }: { keys: Keys; config: HubConfig }, after: string): RouteCall {
  return {
    keys: [keys.in, keys.events, keys.dead, keys.escalations, keys.digests, keys.digestSeq],
    args: [HUB_GROUP, config.ingress.dedupeWindow, config.recordRetention, config.eventsMaxLen, after],
  };
}

type RouteReply = [status: string, n?: string, held?: string];

/**
 * Entries per script call. A batch goes as several calls, each sent as soon
 * as it is built, so that Redis runs one while the hub builds the next (and
 * no call's command grows large).
 */
const ENTRIES_PER_CALL = 25;

/**
 * Route one batch of ingress entries: each entry becomes its deliveries (and,
 * for what cannot be delivered, a dead letter), atomically, in order: the
 * script stops at the first entry Redis fails, and a call whose previous entry
 * is still pending (failed in the call before) does nothing.
 */
export async function routeBatch(deps: RouterDeps, entries: StreamEntry[]): Promise<RouteOutcome> {
  const outcome: RouteOutcome = { routed: 0, dead: 0, duplicates: 0, held: 0 };
  let rest = entries;
  while (rest.length > 0) {
    const calls: Array<Promise<RouteReply[]>> = [];
    for (let i = 0; i < rest.length; i += ENTRIES_PER_CALL) {
      const call = startCall(deps, rest[i - 1]?.id ?? '');
      for (const entry of rest.slice(i, i + ENTRIES_PER_CALL)) routeEntry(call, deps, entry);
      calls.push(runCall(deps.redis, call));
    }
    const replies = (await Promise.all(calls)).flat();
    let done = 0;
    for (const [status, n, held] of replies) {
      if (status === 'error' || status === 'later') break;
      done += 1;
      outcome.held += Number(held ?? 0);
      if (status === 'duplicate') outcome.duplicates += 1;
      else if (status === 'ok' && (n !== '0' || (held ?? '0') !== '0')) outcome.routed += 1;
      else if (status === 'ok') outcome.dead += 1;
    }
    if (done === rest.length) break;
    const [status, error] = replies[done]!;
    if (status === 'later') throw new Error(`${rest.length - done} entries wait for an older one that was not routed; reading them again in order`);
    // Redis refusing for now: the failed entry and all after it stay pending and are read again, in order.
    if (isTransient(error!)) throw new ReplyError(error!);
    // Failing otherwise, it would fail again at every reading: dead-letter it, then route what follows it.
    const reason = `the hub could not route it (${error!.slice(0, 200)}); this is a bug: report it with this dead letter`;
    const deadLetter = startCall(deps, '');
    routeEntry(deadLetter, deps, rest[done]!, reason);
    const [dead] = await runCall(deps.redis, deadLetter);
    if (dead?.[0] === 'error') throw new ReplyError(dead[1]!);
    outcome.dead += 1;
    rest = rest.slice(done + 1);
  }
  return outcome;
}

/** The arrays as they are: ioredis flattens an array argument into its elements, with one copy of the whole call instead of three. */
function runCall(redis: Redis, call: RouteCall): Promise<RouteReply[]> {
  return redis.route(call.keys.length, call.keys, call.args);
}

/** What an entry becomes in the ROUTE call: its deliveries, or, when it cannot be routed (or `failure` says why not), its dead letter. */
function routeEntry(call: RouteCall, deps: RouterDeps, entry: StreamEntry, failure?: string): void {
  const { keys, config, mappingStore } = deps;
  const maxBodyBytes = config.ingress.maxBodyBytes;
  if (failure) return appendEntry(call, deps, entry.id, undefined, [], undefined, ingressDeadLetter(entry.id, failure, entry.fields, maxBodyBytes));
  const parsed = parseEntry(entry.fields, { maxBodyBytes, maxGroups: config.ingress.maxGroups, channels: deps.channels });
  if (!parsed.ok) return appendEntry(call, deps, entry.id, undefined, [], undefined, ingressDeadLetter(entry.id, parsed.reason, entry.fields, maxBodyBytes));
  const message = parsed.message;
  const revision = mappingStore.current?.revision ?? '';
  const now = Date.now();
  const { routes, unknown } = mappingStore.resolve(message.to, message.channels);
  let dead: DeadLetter | undefined;
  if (unknown.length > 0) {
    const known = [...mappingStore.current!.groups.keys()].slice(0, 10).join(', ');
    const reason = `no group ${unknown.join(', ')} in the mapping (revision ${revision}); add it to the mapping or fix \`to\` (known groups include ${known || 'none'})`;
    dead = ingressDeadLetter(entry.id, reason, { ...messageFields(message), to: unknown.join(','), id: undefined }, maxBodyBytes);
  } else if (routes.length === 0) {
    dead = ingressDeadLetter(entry.id, noTargets(message), messageFields(message), maxBodyBytes);
  }
  // One receiver under two spellings is one target: its normalized form orders and names it; the plugin gets it as written.
  const deliveries = routes.map((r, i): QueuedDelivery => ({ id: deliveryId(keys, entry.id, i), channel: r.channel, target: r.receiver, address: r.target }));
  const meta: MessageMeta = {
    to: message.to,
    subject: message.subject,
    producerId: message.producerId,
    ...(message.producer ? { producer: message.producer } : {}),
    receivedAt: now,
    revision,
    deliveries: deliveries.map((d) => [d.id, d.channel, d.target]),
    ...(unknown.length ? { unknown } : {}),
  };
  // Armed with the fan-out, for the known groups with an `escalate` block; the escalator decides at due time
  // whether any of the deliveries went to a channel that watches for acknowledgements.
  const escalation = routes.length > 0 ? escalationFor(mappingStore.current, message.to, message, now, config.recordRetention) : undefined;
  const throttle = throttleSection(keys, mappingStore.current, message, routes, now);
  return appendEntry(call, deps, entry.id, message, deliveries, meta, dead, escalation, throttle);
}

/** The entry's own keys and arguments, appended to the call as the ROUTE script reads them (in place: see {@link pushPairs}). */
function appendEntry(
  call: RouteCall,
  deps: { keys: Keys },
  entryId: string,
  message: InboundMessage | undefined,
  deliveries: QueuedDelivery[],
  meta: MessageMeta | undefined,
  dead: DeadLetter | undefined,
  escalation?: ArmedEscalation,
  throttle: ThrottleSection = NO_THROTTLE,
): void {
  const { keys } = deps;
  const keysBefore = call.keys.length;
  call.keys.push(keys.message(entryId), message?.producerId ? keys.producerId(message.producerId) : keys.in, keys.escalation(entryId));
  for (const key of throttle.keys) call.keys.push(key);
  // The entry's own key and argument counts, then how many record, dead-letter and escalation pairs it has:
  // all but the record's filled in once written.
  const at = call.args.length;
  call.args.push(0, 0, entryId, meta ? 1 : 0, 0, 0, escalation?.dueAt ?? 0, escalation?.ttlMs ?? 0);
  if (meta) call.args.push(RECORD_META_FIELD, JSON.stringify(meta));
  if (dead) call.args[at + 4] = pushPairs(call.args, dead);
  if (escalation) call.args[at + 5] = pushPairs(call.args, escalation.fields);
  for (const arg of throttle.args) call.args.push(arg);
  appendEnqueueBlock(call, keys, message ? deliveries : [], {
    entry: entryId,
    to: message?.to.join(',') ?? '',
    subject: message?.subject,
    body: message?.body ?? '',
    format: message?.format,
    id: message?.producerId,
    watch: escalation ? '1' : '0',
  });
  call.args[at] = call.keys.length - keysBefore;
  call.args[at + 1] = call.args.length - at - 2;
}

/**
 * Not the entry's fault: Redis out of memory, loading, failing over. (A call
 * Redis fails as a whole, or a connection closed under it, rejects the call
 * and leaves the whole batch pending.)
 */
function isTransient(error: string): boolean {
  return /^(OOM|LOADING|BUSY|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/.test(error);
}

/** Stable across replays and unique across hubs that share a peer account: transaction ids are derived from it. */
export function deliveryId(keys: Keys, entryId: string, index: number): string {
  return `${keys.prefix}:${entryId}:${index}`;
}
