import type { ChainableCommander, Redis } from 'ioredis';
import type { DeadLetter } from '../journal/dead-letter.ts';
import { type DeliveryRecord, type OutcomeKind, deliveryRecordField } from '../journal/record.ts';
import type { Keys } from '../redis/keys.ts';
import { pairs } from '../redis/fields.ts';

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

/**
 * Writes delivery outcomes: acknowledgement, delivery record, outcome event and
 * dead letter of one delivery in one atomic script call; the calls of many
 * deliveries pipelined together in one round trip per tick.
 */
export class OutcomeWriter {
  #redis: Redis;
  #keys: Keys;
  #group: string;
  #retentionMs: number;
  #eventsMaxLen: number;
  #batch: { pipeline: ChainableCommander; done: Promise<void> } | undefined;

  constructor(deps: { redis: Redis; keys: Keys; group: string; retentionMs: number; eventsMaxLen: number }) {
    this.#redis = deps.redis;
    this.#keys = deps.keys;
    this.#group = deps.group;
    this.#retentionMs = deps.retentionMs;
    this.#eventsMaxLen = deps.eventsMaxLen;
  }

  /** Queue an outcome; resolves once it is written. */
  write(outcome: Outcome): Promise<void> {
    const { record } = outcome;
    const event = pairs({
      type: outcome.kind,
      entry: outcome.messageId,
      delivery: outcome.deliveryId,
      channel: outcome.channel,
      target: record.target,
      attempts: record.attempts,
      peer: record.peerId,
      error: record.error,
    });
    const dead = outcome.deadLetter ? pairs(outcome.deadLetter) : [];
    const batch = this.#current();
    batch.pipeline.settle(
      5,
      this.#keys.deliver(outcome.channel), this.#keys.events, this.#keys.message(outcome.messageId), this.#keys.dead,
      this.#keys.order(outcome.channel, record.target),
      this.#group, outcome.streamEntry, deliveryRecordField(outcome.deliveryId), outcome.kind, JSON.stringify(record), this.#retentionMs, this.#eventsMaxLen,
      event.length / 2, dead.length / 2, ...event, ...dead,
    );
    return batch.done;
  }

  #current(): { pipeline: ChainableCommander; done: Promise<void> } {
    if (this.#batch) return this.#batch;
    const pipeline = this.#redis.pipeline();
    const done = new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.#batch = undefined;
        pipeline.exec().then((results) => {
          const failed = results?.find(([err]) => err);
          if (failed) reject(failed[0]);
          else resolve();
        }, reject);
      });
    });
    this.#batch = { pipeline, done };
    return this.#batch;
  }
}
