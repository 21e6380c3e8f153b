/**
 * The message record (`<prefix>:msg:<entry>`, a hash): what `hub status` and
 * the escalator know of one message. Field `meta` is written with the fan-out
 * (ROUTE), one field per delivery (`d:<delivery id>`) with each outcome
 * (SETTLE), `ack` with the first acknowledgement. The scripts are given these
 * field names from here; nothing else names them.
 */

export type OutcomeKind = 'sent' | 'retrying' | 'dead';

/** What `hub status` shows for one delivery. */
export interface DeliveryRecord {
  channel: string;
  target: string;
  state: OutcomeKind;
  attempts: number;
  at: string;
  peerId?: string;
  details?: Record<string, string>;
  error?: string;
  history: Array<{ at: string; result: string; error?: string }>;
}

/** What the hub keeps of a message, written with the fan-out. */
export interface MessageMeta {
  to?: string[];
  subject?: string;
  producerId?: string;
  /** The producer's name (the HTTP ingress's token name). */
  producer?: string;
  receivedAt?: number;
  revision?: string;
  /** Each delivery: its id, channel and (normalized) target. */
  deliveries?: Array<[id: string, channel: string, target: string]>;
  unknown?: string[];
}

/** The first acknowledgement a watching channel saw (read receipt, reaction, reply). */
export interface AckRecord {
  by: string;
  how: string;
  channel: string;
  at: string;
}

export const RECORD_META_FIELD = 'meta';
export const RECORD_ACK_FIELD = 'ack';

/** The record's field of one delivery's last outcome. */
export function deliveryRecordField(deliveryId: string): string {
  return `d:${deliveryId}`;
}

/** A message record read back. */
export function readMessageRecord(hash: Record<string, string>): { meta: MessageMeta; ack?: AckRecord; delivery(id: string): DeliveryRecord | undefined } {
  const meta = hash[RECORD_META_FIELD] ? (JSON.parse(hash[RECORD_META_FIELD]) as MessageMeta) : {};
  const ack = hash[RECORD_ACK_FIELD];
  return {
    meta,
    ...(ack ? { ack: JSON.parse(ack) as AckRecord } : {}),
    delivery: (id) => {
      const saved = hash[deliveryRecordField(id)];
      return saved ? (JSON.parse(saved) as DeliveryRecord) : undefined;
    },
  };
}

/** Whether a record holds a message (its `meta`). */
export function hasMessage(hash: Record<string, string>): boolean {
  return hash[RECORD_META_FIELD] !== undefined;
}
