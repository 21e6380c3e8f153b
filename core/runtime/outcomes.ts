import type { Redis } from 'ioredis';
import type { DeadLetter } from '../journal/dead-letter.ts';
import { type DeliveryRecord, type OutcomeKind, deliveryRecordField } from '../journal/record.ts';
import type { Keys } from '../redis/keys.ts';
import { pushPairs } from '../redis/fields.ts';
import { makingKey } from './pending.ts';

export interface Outcome {
  kind: OutcomeKind;
  channel: string;
  streamEntry: string;
  deliveryId: string;
  messageId: string;
  record: DeliveryRecord;
  /** For `dead`: the dead letter (reason, error and the fields replay needs). */
  deadLetter?: DeadLetter;
}

interface Batch {
  keys: string[];
  args: Array<string | number>;
  size: number;
  written: Written;
}

export interface Written {
  /** Resolves once the script call is on the connection: a command issued after it on the same connection runs after it. */
  sent: Promise<void>;
  /** Resolves once Redis has written the outcome. */
  done: Promise<void>;
}

/** Outcomes written in one script call at most: the script holds Redis for its whole batch. */
const MAX_BATCH = 128;

/**
 * Writes delivery outcomes: acknowledgement, delivery record, outcome event and
 * dead letter of each delivery, the outcomes of one tick together in one
 * script call (core/journal/scripts.ts, SETTLE), one round trip.
 */
export class OutcomeWriter {
  #redis: Redis;
  #keys: Keys;
  #group: string;
  #retentionMs: number;
  #eventsMaxLen: number;
  #batch: Batch | undefined;

  constructor(deps: { redis: Redis; keys: Keys; group: string; retentionMs: number; eventsMaxLen: number }) {
    this.#redis = deps.redis;
    this.#keys = deps.keys;
    this.#group = deps.group;
    this.#retentionMs = deps.retentionMs;
    this.#eventsMaxLen = deps.eventsMaxLen;
  }

  /** Queue an outcome, written with the others of this tick. */
  write(outcome: Outcome): Written {
    const { record } = outcome;
    const batch = this.#current();
    const stream = this.#keys.deliver(outcome.channel);
    batch.keys.push(
      stream,
      this.#keys.message(outcome.messageId),
      this.#keys.order(outcome.channel, record.target),
      makingKey(stream, outcome.streamEntry),
      this.#keys.orderWaiters(outcome.channel, record.target),
    );
    // The counts of the event's and the dead letter's pairs, filled in as they are written (in place: see pushPairs).
    const at = batch.args.length + 4;
    batch.args.push(outcome.streamEntry, deliveryRecordField(outcome.deliveryId), outcome.kind, JSON.stringify(record), 0, 0);
    batch.args[at] = pushPairs(batch.args, {
      type: outcome.kind,
      entry: outcome.messageId,
      delivery: outcome.deliveryId,
      channel: outcome.channel,
      target: record.target,
      attempts: record.attempts,
      peer: record.peerId,
      error: record.error,
    });
    if (outcome.deadLetter) batch.args[at + 1] = pushPairs(batch.args, outcome.deadLetter);
    batch.size += 1;
    if (batch.size >= MAX_BATCH) this.#batch = undefined;
    return batch.written;
  }

  #current(): Batch {
    if (this.#batch) return this.#batch;
    let sent!: () => void;
    const written: Written = { sent: new Promise<void>((resolve) => (sent = resolve)), done: Promise.resolve() };
    const batch: Batch = { keys: [this.#keys.events, this.#keys.dead], args: [this.#group, this.#retentionMs, this.#eventsMaxLen] as Array<string | number>, size: 0, written };
    written.done = new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        if (this.#batch === batch) this.#batch = undefined;
        this.#redis.settle(batch.keys.length, batch.keys, batch.args).then(() => resolve(), reject);
        sent();
      });
    });
    this.#batch = batch;
    return batch;
  }
}
