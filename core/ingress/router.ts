import { type ChainableCommander, type Redis, ReplyError } from 'ioredis';
import type { HubConfig } from '../config/schema.ts';
import { type ThrottleSection, throttleSection } from '../digest/throttle-lua.ts';
import { type ArmedEscalation, escalationFor } from '../escalation/arm.ts';
import { type DeadLetter, ingressDeadLetter, messageFields } from '../journal/dead-letter.ts';
import type { QueuedDelivery } from '../journal/delivery.ts';
import { enqueueBlock } from '../journal/enqueue.ts';
import { type MessageMeta, RECORD_META_FIELD } from '../journal/record.ts';
import type { MappingStore } from '../mapping/store.ts';
import type { Keys } from '../redis/keys.ts';
import { pairs } from '../redis/fields.ts';
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

/**
 * Route one batch of ingress entries: each entry becomes its deliveries (and,
 * for what cannot be delivered, a dead letter) in one atomic script call, all
 * calls pipelined into one round trip.
 */
/** Why a message whose groups are all known reaches no target: the dead letter's reason, and the HTTP ingress's 422. */
export function noTargets(message: Pick<InboundMessage, 'to' | 'channels'>): string {
  return `${message.to.join(', ')} has no targets${message.channels ? ` on channels ${[...message.channels].join(', ')}` : ''}; add targets to the mapping or change \`channels\``;
}

export async function routeBatch(deps: RouterDeps, entries: StreamEntry[]): Promise<RouteOutcome> {
  const { redis, keys, config, mappingStore } = deps;
  const maxBodyBytes = config.ingress.maxBodyBytes;
  const limits = { maxBodyBytes, maxGroups: config.ingress.maxGroups, channels: deps.channels };
  const revision = mappingStore.current?.revision ?? '';
  const pipeline = redis.pipeline();
  const now = Date.now();
  // Each route call after the first goes only once the one before it in the batch went (see the ROUTE script).
  let previous = '';
  for (const entry of entries) {
    const after = previous;
    previous = entry.id;
    const parsed = parseEntry(entry.fields, limits);
    if (!parsed.ok) {
      queueRoute(pipeline, deps, { entry: entry.id, after }, undefined, [], undefined, ingressDeadLetter(entry.id, parsed.reason, entry.fields, maxBodyBytes));
      continue;
    }
    const message = parsed.message;
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
    queueRoute(pipeline, deps, { entry: entry.id, after }, message, deliveries, meta, dead, escalation, throttle);
  }
  const results = (await pipeline.exec()) ?? [];
  const outcome: RouteOutcome = { routed: 0, dead: 0, duplicates: 0, held: 0 };
  // Redis refusing for now, or the connection lost: the batch stays pending and is taken over again.
  const transient = results.find(([err]) => err && isTransient(err));
  if (transient) throw transient[0];
  // An entry whose script failed otherwise would fail again at every takeover: dead-letter it instead.
  const failed = entries.filter((_, i) => results[i]?.[0]);
  if (failed.length) {
    const retry = redis.pipeline();
    for (const entry of failed) {
      const error = results[entries.indexOf(entry)]![0]!.message.slice(0, 200);
      const reason = `the hub could not route it (${error}); this is a bug: report it with this dead letter`;
      queueRoute(retry, deps, { entry: entry.id, after: '' }, undefined, [], undefined, ingressDeadLetter(entry.id, reason, entry.fields, maxBodyBytes));
    }
    for (const [err] of (await retry.exec()) ?? []) if (err) throw err;
    outcome.dead += failed.length;
  }
  // Entries held back behind one that was not routed: the batch is read again, in order, from the pending list.
  const waiting = results.filter(([err, reply]) => !err && (reply as string[])[0] === 'later').length;
  if (waiting > 0) throw new Error(`${waiting} entries wait for an older one that was not routed; reading them again in order`);
  for (const [err, reply] of results) {
    if (err) continue;
    const [status, n, held] = reply as [string, string?, string?];
    outcome.held += Number(held ?? 0);
    if (status === 'duplicate') outcome.duplicates += 1;
    else if (status === 'ok' && (n !== '0' || (held ?? '0') !== '0')) outcome.routed += 1;
    else if (status === 'ok') outcome.dead += 1;
  }
  return outcome;
}

function queueRoute(
  pipeline: ChainableCommander,
  deps: { keys: Keys; config: HubConfig },
  /** The entry, and the one routed just before it in the same pipeline ('' for none). */
  at: { entry: string; after: string },
  message: InboundMessage | undefined,
  deliveries: QueuedDelivery[],
  meta: MessageMeta | undefined,
  dead: DeadLetter | undefined,
  escalation?: ArmedEscalation,
  throttle: ThrottleSection = { keys: [], args: [0] },
): void {
  const { keys, config } = deps;
  const entryId = at.entry;
  const block = enqueueBlock(keys, message ? deliveries : [], {
    entry: entryId,
    to: message?.to.join(',') ?? '',
    subject: message?.subject,
    body: message?.body ?? '',
    format: message?.format,
    id: message?.producerId,
    watch: escalation ? '1' : '0',
  });
  const record = meta ? [RECORD_META_FIELD, JSON.stringify(meta)] : [];
  const deadPairs = dead ? pairs(dead) : [];
  const escalationPairs = escalation ? pairs(escalation.fields) : [];
  const producerKey = message?.producerId ? keys.producerId(message.producerId) : keys.in;
  pipeline.route(
    9 + throttle.keys.length + block.keys.length,
    keys.in, keys.events, keys.message(entryId), producerKey, keys.dead, keys.escalations, keys.escalation(entryId), keys.digests, keys.digestSeq,
    ...throttle.keys, ...block.keys,
    HUB_GROUP, entryId, config.ingress.dedupeWindow, config.recordRetention, config.eventsMaxLen,
    record.length / 2, deadPairs.length / 2, escalationPairs.length / 2, escalation?.dueAt ?? 0, escalation?.ttlMs ?? 0,
    ...record, ...deadPairs, ...escalationPairs, ...throttle.args, ...block.args, at.after,
  );
}

/**
 * Not the entry's fault: Redis out of memory, loading, failing over, or the
 * connection closed under a command (an error that is no reply of Redis's,
 * such as ioredis's "Command aborted due to connection close").
 */
function isTransient(err: Error): boolean {
  return !(err instanceof ReplyError) || /^(OOM|LOADING|BUSY|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/.test(err.message);
}

/** Stable across replays and unique across hubs that share a peer account: transaction ids are derived from it. */
export function deliveryId(keys: Keys, entryId: string, index: number): string {
  return `${keys.prefix}:${entryId}:${index}`;
}
