import { type ChainableCommander, type Redis, ReplyError } from 'ioredis';
import type { HubConfig } from '../config/schema.ts';
import { type ArmedEscalation, escalationFor } from '../escalation/arm.ts';
import type { MappingStore } from '../mapping/store.ts';
import type { Keys } from '../redis/keys.ts';
import { pairs } from '../redis/fields.ts';
import type { MessageMeta } from '../runtime/outcomes.ts';
import type { StreamEntry } from '../redis/stream-consumer.ts';
import { type InboundMessage, parseEntry } from './parse-entry.ts';

export const HUB_GROUP = 'hub';

/** The fields replay needs, as they are stored in deliveries and dead letters. */
export function messageFields(message: InboundMessage): Record<string, string | undefined> {
  return {
    to: message.to.join(','),
    subject: message.subject,
    body: message.body,
    format: message.format,
    id: message.producerId,
    channels: message.channels ? [...message.channels].join(',') : undefined,
  };
}

export interface RouteOutcome {
  routed: number;
  dead: number;
  duplicates: number;
}

/**
 * Route one batch of ingress entries: each entry becomes its deliveries (and,
 * for what cannot be delivered, a dead letter) in one atomic script call, all
 * calls pipelined into one round trip.
 */
export async function routeBatch(
  deps: { redis: Redis; keys: Keys; config: HubConfig; mappingStore: MappingStore; channels: ReadonlySet<string> },
  entries: StreamEntry[],
): Promise<RouteOutcome> {
  const { redis, keys, config, mappingStore } = deps;
  const limits = { maxBodyBytes: config.ingress.maxBodyBytes, maxGroups: config.ingress.maxGroups, channels: deps.channels };
  const revision = mappingStore.current?.revision ?? '';
  const pipeline = redis.pipeline();
  const now = Date.now();
  for (const entry of entries) {
    const parsed = parseEntry(entry.fields, limits);
    if (!parsed.ok) {
      queueRoute(pipeline, deps, entry.id, undefined, [], {}, deadLetter(entry, parsed.reason, originalFields(entry.fields, config.ingress.maxBodyBytes)));
      continue;
    }
    const message = parsed.message;
    const { routes, unknown } = mappingStore.resolve(message.to, message.channels);
    let dead: Record<string, string | undefined> | undefined;
    if (unknown.length > 0) {
      const known = [...mappingStore.current!.groups.keys()].slice(0, 10).join(', ');
      dead = deadLetter(entry, `no group ${unknown.join(', ')} in the mapping (revision ${revision}); add it to the mapping or fix \`to\` (known groups include ${known || 'none'})`, {
        ...messageFields(message),
        to: unknown.join(','),
        id: undefined,
      });
    } else if (routes.length === 0) {
      dead = deadLetter(entry, `${message.to.join(', ')} has no targets${message.channels ? ` on channels ${[...message.channels].join(', ')}` : ''}; add targets to the mapping or change \`channels\``, messageFields(message));
    }
    const deliveries = routes.map((r, i): [string, string, string] => [deliveryId(keys, entry.id, i), r.channel, r.target]);
    const meta = JSON.stringify({
      to: message.to,
      subject: message.subject,
      producerId: message.producerId,
      receivedAt: now,
      revision,
      deliveries,
      ...(unknown.length ? { unknown } : {}),
    } satisfies MessageMeta);
    // Armed with the fan-out, for the known groups with an `escalate` block; the escalator decides at due time
    // whether any of the deliveries went to a channel that watches for acknowledgements.
    const escalation = routes.length > 0 ? escalationFor(mappingStore.current, message.to, message, now, config.recordRetention) : undefined;
    queueRoute(pipeline, deps, entry.id, message, deliveries, { meta }, dead, escalation);
  }
  const results = (await pipeline.exec()) ?? [];
  const outcome: RouteOutcome = { routed: 0, dead: 0, duplicates: 0 };
  // Redis refusing for now (out of memory, loading, a failover), or the connection cut before it answered
  // (not a reply at all): the batch stays pending and is read again.
  const transient = results.find(([err]) => err && (!(err instanceof ReplyError) || /^(OOM|LOADING|BUSY|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/.test(err.message)));
  if (transient) throw transient[0];
  // An entry whose script failed otherwise would fail again at every takeover: dead-letter it instead.
  const failed = entries.filter((_, i) => results[i]?.[0]);
  if (failed.length) {
    const retry = redis.pipeline();
    for (const entry of failed) {
      const error = results[entries.indexOf(entry)]![0]!.message;
      queueRoute(retry, deps, entry.id, undefined, [], {}, deadLetter(entry, `the hub could not route it (${error}); this is a bug: report it with this dead letter`, originalFields(entry.fields, config.ingress.maxBodyBytes)));
    }
    for (const [err] of (await retry.exec()) ?? []) if (err) throw err;
    outcome.dead += failed.length;
  }
  for (const [err, reply] of results) {
    if (err) continue;
    const [status, n] = reply as [string, string?];
    if (status === 'duplicate') outcome.duplicates += 1;
    else if (status === 'ok' && n !== '0') outcome.routed += 1;
    else if (status === 'ok') outcome.dead += 1;
  }
  return outcome;
}

function queueRoute(
  pipeline: ChainableCommander,
  deps: { keys: Keys; config: HubConfig },
  entryId: string,
  message: InboundMessage | undefined,
  deliveries: [string, string, string][],
  record: { meta?: string },
  dead: Record<string, string | undefined> | undefined,
  escalation?: ArmedEscalation,
): void {
  const { keys, config } = deps;
  const shared = message ? pairs(messageFields(message)) : [];
  const deadPairs = dead ? pairs(dead) : [];
  const producerKey = message?.producerId ? keys.producerId(message.producerId) : '';
  const streamKeys = deliveries.map(([, channel]) => keys.deliver(channel));
  const orderKeys = deliveries.map(([, channel, target]) => keys.order(channel, target));
  const escalationKeys = escalation ? [keys.escalations, keys.escalation(entryId)] : [];
  const escalationArgs = escalation ? pairs(escalation.fields) : [];
  pipeline.route(
    5 + deliveries.length * 2 + escalationKeys.length,
    keys.in, keys.events, keys.message(entryId), producerKey, keys.dead, ...streamKeys, ...orderKeys, ...escalationKeys,
    HUB_GROUP, entryId, config.ingress.dedupeWindow, record.meta ?? '', config.recordRetention, config.eventsMaxLen,
    deliveries.length, shared.length / 2, deadPairs.length / 2,
    ...shared, ...deliveries.flat(), ...deadPairs,
    ...(escalation ? [escalation.dueAt, escalation.ttlMs, escalationArgs.length / 2, ...escalationArgs] : []),
  );
}

/** Stable across replays and unique across hubs that share a peer account: transaction ids are derived from it. */
export function deliveryId(keys: Keys, entryId: string, index: number): string {
  return `${keys.prefix}:${entryId}:${index}`;
}

function deadLetter(entry: StreamEntry, reason: string, fields: Record<string, string | undefined>): Record<string, string | undefined> {
  return { ...fields, reason, stage: 'ingress', entry: entry.id, at: new Date().toISOString() };
}

/** The producer's fields, each cut to a size a dead letter can carry. */
function originalFields(fields: Record<string, string>, maxBytes: number): Record<string, string> {
  const out: Record<string, string> = {};
  const cut: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (['reason', 'stage', 'entry', 'at', 'truncated'].includes(key)) continue;
    if (value.length > maxBytes * 2) cut.push(key);
    out[key] = value.length > maxBytes * 2 ? value.slice(0, 1024) : value;
  }
  if (cut.length) out.truncated = cut.join(',');
  return out;
}
