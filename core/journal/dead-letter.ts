/**
 * Dead letters (`<prefix>:dead`, CONTRACT §3): what could not be delivered,
 * with a reason and the original fields, so that `hub dead replay` can send it
 * again. A dead letter keeps a bounded copy: the fields the hub knows, each cut
 * to a bound, and a few others; what it leaves out is counted in `dropped` and
 * said in the reason. However many or large the fields a producer sends, the
 * dead letter stays small enough to write, so every entry ends delivered or
 * dead-lettered.
 */
import type { Delivery } from '../plugin-api.ts';
import { DELIVERY_FIELDS, type DeliveryFields, deliveryFieldsOf } from './delivery.ts';

/** The fields a producer may send (CONTRACT §1): an ingress dead letter keeps these, and replay sends them again. */
export const INGRESS_FIELDS = ['to', 'subject', 'body', 'format', 'id', 'channels', 'key', 'producer', 'content'] as const;

/** The dead letter's own fields: a producer's field of the same name is not copied over them. */
const OWN = new Set(['reason', 'stage', 'entry', 'at', 'truncated', 'dropped', 'attempts', 'error']);
/** Fields the hub does not know that a dead letter still keeps (a `priority` a producer added), and how long their names may be. */
const OTHER_FIELDS = 16;
const OTHER_NAME_CHARS = 200;
/** A value over the bound is cut to its start. */
const CUT_TO_CHARS = 1024;

export type DeadLetter = Record<string, string>;

/** The producer's message as an ingress dead letter keeps it, for replay (the parsed form: groups joined, defaults filled in). */
export function messageFields(message: {
  to: string[];
  subject?: string;
  body: string;
  format: string;
  producerId?: string;
  producer?: string;
  channels?: ReadonlySet<string>;
  key?: string;
}): Record<string, string | undefined> {
  return {
    to: message.to.join(','),
    subject: message.subject,
    body: message.body,
    format: message.format,
    id: message.producerId,
    channels: message.channels ? [...message.channels].join(',') : undefined,
    producer: message.producer,
    key: message.key,
  };
}

/**
 * An ingress dead letter: the reason and `fields` (the producer's raw fields,
 * or {@link messageFields} of a message that parsed), bounded.
 * `maxBodyBytes`: the ingress body limit; a value up to twice that is kept whole.
 */
export function ingressDeadLetter(entry: string, reason: string, fields: Record<string, string | undefined>, maxBodyBytes: number): DeadLetter {
  const copy = boundedCopy(fields, INGRESS_FIELDS, maxBodyBytes * 2);
  return { ...copy.fields, reason: withDropped(reason, copy), stage: 'ingress', entry, at: new Date().toISOString() };
}

/** A delivery's dead letter: the delivery entry's fields (bounded), why, and the peer's last answer. */
export function deliveryDeadLetter(
  fields: Record<string, string>,
  delivery: Delivery,
  detail: { reason: string; attempts: number; error?: string; at: string },
  maxBodyBytes: number,
): DeadLetter {
  const copy = boundedCopy(deliveryFieldsOf(fields), DELIVERY_FIELDS, maxBodyBytes * 2);
  const own: Partial<DeliveryFields> = { delivery: delivery.id, entry: delivery.messageId, channel: delivery.channel, target: delivery.target };
  return {
    ...copy.fields,
    ...own,
    reason: withDropped(detail.reason, copy),
    stage: 'delivery',
    attempts: String(detail.attempts),
    ...(detail.error !== undefined ? { error: detail.error } : {}),
    at: detail.at,
  };
}

/** What replay writes back for a dead letter: a delivery to its channel's stream (and order list), or a message to the ingress stream. */
export type Replayed = { stage: 'delivery'; channel: string; target: string; fields: Record<string, string> } | { stage: 'ingress'; fields: Record<string, string> };

export function replayOf(letter: Record<string, string>): Replayed {
  if (letter.stage === 'delivery') return { stage: 'delivery', channel: letter.channel ?? '', target: letter.target ?? '', fields: deliveryFieldsOf(letter) };
  const fields: Record<string, string> = {};
  for (const name of INGRESS_FIELDS) if (letter[name] !== undefined) fields[name] = letter[name]!;
  return { stage: 'ingress', fields };
}

interface BoundedCopy {
  fields: Record<string, string>;
  /** Dropped: how many fields, and their size in bytes (names and values). */
  dropped: { count: number; bytes: number };
}

/**
 * The `known` fields, each cut to `maxValue`, then up to {@link OTHER_FIELDS}
 * others with short names, within `maxValue` in all; `truncated` names the
 * fields that were cut, `dropped` counts the ones left out.
 */
function boundedCopy(fields: Record<string, string | undefined>, known: readonly string[], maxValue: number): BoundedCopy {
  const out: Record<string, string> = {};
  const cut: string[] = [];
  const dropped = { count: 0, bytes: 0 };
  const keep = (name: string, value: string) => {
    if (value.length > maxValue) cut.push(name);
    out[name] = value.length > maxValue ? value.slice(0, CUT_TO_CHARS) : value;
  };
  for (const name of known) {
    const value = fields[name];
    if (value !== undefined && !OWN.has(name)) keep(name, value);
  }
  const isKnown = new Set<string>(known);
  let others = 0;
  let otherChars = 0;
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || isKnown.has(name)) continue;
    const kept = value.length > maxValue ? CUT_TO_CHARS : value.length;
    if (OWN.has(name) || name.length > OTHER_NAME_CHARS || others >= OTHER_FIELDS || otherChars + kept > maxValue) {
      dropped.count += 1;
      dropped.bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
      continue;
    }
    others += 1;
    otherChars += kept;
    keep(name, value);
  }
  if (cut.length) out.truncated = cut.join(',');
  if (dropped.count) out.dropped = `${dropped.count} field(s), ${size(dropped.bytes)}`;
  return { fields: out, dropped };
}

function withDropped(reason: string, copy: BoundedCopy): string {
  const { count, bytes } = copy.dropped;
  return count ? `${reason} (${count} more field(s) of ${size(bytes)} were not kept in this dead letter)` : reason;
}

function size(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : bytes >= 1024 ? `${Math.ceil(bytes / 1024)} KiB` : `${bytes} bytes`;
}
