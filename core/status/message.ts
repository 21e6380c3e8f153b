import type { Redis } from 'ioredis';
import { type DigestStatus, digestStatus, heldIn, isDigestId } from '../digest/status.ts';
import { type EscalationStatus, escalationStatus } from '../escalation/status.ts';
import type { Keys } from '../redis/keys.ts';
import { fromPairs } from '../redis/fields.ts';
import { type AckRecord, type DeliveryRecord, hasMessage, readMessageRecord } from '../journal/record.ts';

export interface MessageStatus {
  entry: string;
  producerId?: string;
  /** The producer's name, when it sent through the HTTP ingress (or wrote `producer`). */
  producer?: string;
  to?: string[];
  subject?: string;
  receivedAt?: string;
  revision?: string;
  /** Groups of `to` the mapping did not know (dead-lettered). */
  unknown?: string[];
  /** Its targets, then the escalation's reminders (those carry `escalation`: their round). */
  deliveries: Array<Omit<Partial<DeliveryRecord>, 'state'> & { id: string; channel: string; target: string; state: DeliveryRecord['state'] | 'queued'; escalation?: number }>;
  deadLetters: Array<Record<string, string>>;
  /** The first acknowledgement a watching channel saw (read receipt, reaction, reply). */
  acknowledged?: AckRecord;
  /** When a group of `to` has an `escalate` block: its state, next due time, rounds sent, acknowledgement. */
  escalation?: EscalationStatus;
  /** A message held in throttle windows: the digest that carries it (or will), per group. */
  heldIn?: DigestStatus[];
  /** When this is a digest (`digest-<n>`): its window, how many it holds, its state. */
  digest?: DigestStatus;
}

/**
 * Everything known of one message: its targets, each one's state, attempts and
 * the peer's ids, and its dead letters. `id` is the entry id XADD returned, or
 * the producer's own `id`.
 */
export async function messageStatus(redis: Redis, keys: Keys, id: string): Promise<MessageStatus | undefined> {
  const entry = /^\d+-\d+$/.test(id) || isDigestId(id) ? id : ((await redis.get(keys.producerId(id))) ?? id);
  const [record, dead, escalation, digest] = await Promise.all([
    redis.hgetall(keys.message(entry)),
    deadLettersOf(redis, keys, entry),
    escalationStatus(redis, keys, entry),
    isDigestId(entry) ? digestStatus(redis, keys, entry) : undefined,
  ]);
  if (!hasMessage(record) && dead.length === 0 && !digest) return undefined;
  const held = await heldIn(redis, keys, record);
  const { meta, ack, delivery } = readMessageRecord(record);
  const deliveries: MessageStatus['deliveries'] = (meta.deliveries ?? []).map(([deliveryId, channel, target]) => {
    const saved: Partial<DeliveryRecord> = delivery(deliveryId) ?? {};
    return { id: deliveryId, ...saved, channel, target, state: saved.state ?? ('queued' as const) };
  });
  for (const reminder of escalation?.deliveries ?? []) {
    const saved: Partial<DeliveryRecord> = delivery(reminder.id) ?? {};
    deliveries.push({ id: reminder.id, ...saved, channel: reminder.channel, target: reminder.target, state: saved.state ?? 'queued', escalation: reminder.round });
  }
  return {
    entry,
    ...(meta.producerId ? { producerId: meta.producerId } : {}),
    ...(meta.producer ? { producer: meta.producer } : {}),
    ...(meta.to ? { to: meta.to } : {}),
    ...(meta.subject ? { subject: meta.subject } : {}),
    ...(meta.receivedAt ? { receivedAt: new Date(meta.receivedAt).toISOString() } : {}),
    ...(meta.revision ? { revision: meta.revision } : {}),
    ...(meta.unknown ? { unknown: meta.unknown } : {}),
    deliveries,
    deadLetters: dead,
    ...(ack ? { acknowledged: ack } : {}),
    ...(escalation ? { escalation } : {}),
    ...(held.length ? { heldIn: held } : {}),
    ...(digest ? { digest } : {}),
  };
}

async function deadLettersOf(redis: Redis, keys: Keys, entry: string): Promise<Array<Record<string, string>>> {
  // Dead letters are few; the newest 10,000 are searched.
  const rows = (await redis.xrevrange(keys.dead, '+', '-', 'COUNT', 10_000)) as Array<[string, string[]]>;
  return rows.map(([id, flat]): Record<string, string> => ({ id, ...fromPairs(flat) })).filter((r) => r.entry === entry);
}
