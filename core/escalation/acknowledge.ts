/**
 * The core side of acknowledgements: what a watching plugin calls through
 * its context (`awaitsAcknowledgement`, `acknowledge`).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubConfig } from '../config/schema.ts';
import type { Metrics } from '../metrics.ts';
import type { Acknowledgement } from '../plugin-api.ts';
import { type AckRecord, RECORD_ACK_FIELD } from '../journal/record.ts';
import type { Keys } from '../redis/keys.ts';

export interface Acknowledgements {
  awaits(messageId: string): Promise<boolean>;
  acknowledge(messageId: string, ack: Acknowledgement): Promise<void>;
}

const HOW = new Set(['read', 'reaction', 'reply']);

export function acknowledgements(deps: { redis: Redis; keys: Keys; config: HubConfig; metrics: Metrics; logger: Logger }, channel: string): Acknowledgements {
  const { redis, keys, config, metrics } = deps;
  const logger = deps.logger.child({ component: 'acknowledgements', channel });
  return {
    async awaits(messageId) {
      return (await redis.hget(keys.escalation(messageId), 'state')) === 'armed';
    },
    async acknowledge(messageId, ack) {
      if (!HOW.has(ack.how)) throw new TypeError(`acknowledge: "how" is read, reaction or reply, not ${JSON.stringify(ack.how)}`);
      const at = Date.now();
      const record = JSON.stringify({ by: ack.by, how: ack.how, channel, at: new Date(at).toISOString() } satisfies AckRecord);
      const result = await redis.escalationAcknowledge(
        4, keys.escalations, keys.escalation(messageId), keys.message(messageId), keys.events,
        messageId, ack.by, ack.how, at, config.eventsMaxLen, record, RECORD_ACK_FIELD,
      );
      if (result === 'cancelled') {
        metrics.escalations.inc({ outcome: 'cancelled' });
        logger.info({ entry: messageId, by: ack.by, how: ack.how }, 'escalation cancelled: acknowledged');
      } else if (result === 'partial') {
        logger.info({ entry: messageId, by: ack.by }, 'read by one of the people it escalates to; the others are still nagged');
      }
    },
  };
}
