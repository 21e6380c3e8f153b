/**
 * The delivery entry: one message to one target, an entry of
 * `<prefix>:deliver:<channel>`. Its fields are named here and nowhere else:
 * the router and the escalator write them (through the enqueue fragment), the
 * worker reads them, a delivery's dead letter carries them, and replay writes
 * them back. A new field is added to {@link DeliveryFields} and travels the
 * whole way.
 */
import type { BodyFormat, Delivery } from '../plugin-api.ts';
import type { Keys } from '../redis/keys.ts';

export interface DeliveryFields {
  /** Stable across retries and replays, unique across hubs: the peer's idempotency key is derived from it. */
  delivery: string;
  /** The ingress entry the message came from: its id for `hub status`. */
  entry: string;
  channel: string;
  /** The receiver as the channel's plugin normalizes it: the target's order list and its records are keyed by it. */
  target: string;
  /** The target as written in the mapping, when it differs from `target`: what the plugin is given to deliver to. */
  address?: string;
  /** For an escalation's reminder: its round. */
  escalation?: string;
  /** `1` when the message escalates unless acknowledged (and for its reminders), `0` when not: plugins that watch keep its peer ids. Absent in deliveries queued by an older hub. */
  watch?: string;
  /** The message: the same for every delivery of it. */
  to: string;
  subject?: string;
  body: string;
  format?: string;
  id?: string;
}

/** Every field of a delivery entry (the record type above, as a list, checked by the compiler both ways). */
const FIELDS: Record<keyof DeliveryFields, true> = {
  delivery: true, entry: true, channel: true, target: true, address: true, escalation: true, watch: true,
  to: true, subject: true, body: true, format: true, id: true,
};
export const DELIVERY_FIELDS = Object.keys(FIELDS) as Array<keyof DeliveryFields>;

/** The fields one message's deliveries share. */
export type SharedFields = Pick<DeliveryFields, 'entry' | 'escalation' | 'watch' | 'to' | 'subject' | 'body' | 'format' | 'id'>;

/** What differs between the deliveries of one message. */
export interface QueuedDelivery {
  id: string;
  channel: string;
  /** Normalized (see {@link DeliveryFields.target}). */
  target: string;
  /** As written, when it differs. */
  address?: string;
}

/** The fields of one queued delivery of its own, as {@link DeliveryFields} names them. */
export function ownFields(delivery: QueuedDelivery): Pick<DeliveryFields, 'delivery' | 'channel' | 'target' | 'address'> {
  return {
    delivery: delivery.id,
    channel: delivery.channel,
    target: delivery.target,
    ...(delivery.address !== undefined && delivery.address !== delivery.target ? { address: delivery.address } : {}),
  };
}

/** A delivery entry read by a worker: the delivery the plugin is given, and the normalized receiver that orders it. */
export interface ReadDelivery {
  /** `target` is the receiver (normalized): what the order list, the records and the dead letter name. */
  delivery: Delivery;
  /** What the plugin delivers to: the target as written in the mapping. */
  address: string;
}

/** Read one entry of a channel's stream (an entry missing fields still makes a delivery, which the peer then refuses). */
export function readDelivery(keys: Keys, channel: string, streamId: string, fields: Record<string, string>): ReadDelivery {
  const target = fields.target ?? '';
  return {
    delivery: {
      id: fields.delivery ?? `${keys.prefix}:${streamId}`,
      messageId: fields.entry ?? streamId,
      channel,
      target,
      attempt: 1,
      ...(fields.watch === '1' || fields.watch === '0' ? { awaitsAcknowledgement: fields.watch === '1' } : {}),
      message: {
        to: (fields.to ?? '').split(',').filter(Boolean),
        body: fields.body ?? '',
        format: (fields.format ?? 'html') as BodyFormat,
        ...(fields.subject ? { subject: fields.subject } : {}),
        ...(fields.id ? { producerId: fields.id } : {}),
      },
    },
    address: fields.address || target,
  };
}

/** The fields of a delivery entry among `record` (a dead letter's), each as stored. */
export function deliveryFieldsOf(record: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of DELIVERY_FIELDS) if (record[name] !== undefined) out[name] = record[name]!;
  return out;
}
