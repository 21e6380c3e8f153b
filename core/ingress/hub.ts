import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubConfig } from '../config/schema.ts';
import type { MappingStore } from '../mapping/store.ts';
import type { Metrics } from '../metrics.ts';
import type { Keys } from '../redis/keys.ts';
import { consumeStream } from '../redis/stream-consumer.ts';
import { Heartbeat } from '../runtime/heartbeat.ts';
import { HUB_GROUP, routeBatch } from './router.ts';

/**
 * The hub: consumer group `hub` on the ingress stream, routing each entry
 * through the mapping in force into the channels' delivery streams. It
 * consumes nothing until a mapping is in force.
 */
export class Hub {
  #deps: { redis: Redis; keys: Keys; config: HubConfig; mappingStore: MappingStore; channels: ReadonlySet<string> };
  #logger: Logger;
  #metrics: Metrics;
  #consumer: string;
  #reader: Redis | undefined;
  #controller = new AbortController();
  #running: Promise<void> | undefined;
  #heartbeat: Heartbeat;

  constructor(deps: { redis: Redis; keys: Keys; config: HubConfig; mappingStore: MappingStore; channelNames: ReadonlySet<string>; logger: Logger; metrics: Metrics; consumerName: string }) {
    this.#deps = { redis: deps.redis, keys: deps.keys, config: deps.config, mappingStore: deps.mappingStore, channels: deps.channelNames };
    this.#logger = deps.logger.child({ component: 'hub' });
    this.#metrics = deps.metrics;
    this.#consumer = deps.consumerName;
    this.#heartbeat = new Heartbeat(deps.redis, deps.keys.hubs, deps.consumerName);
  }

  start(): void {
    const signal = this.#controller.signal;
    this.#running = (async () => {
      const { mappingStore, redis, keys, config } = this.#deps;
      if (!mappingStore.current) this.#logger.warn('no mapping in force yet; consuming nothing until one is loaded');
      await mappingStore.ready(signal);
      this.#heartbeat.start();
      this.#reader = redis.duplicate();
      this.#logger.info({ stream: keys.in, consumer: this.#consumer }, 'hub consuming');
      await consumeStream(
        {
          redis,
          reader: this.#reader,
          stream: keys.in,
          group: HUB_GROUP,
          consumer: this.#consumer,
          batchSize: config.ingress.batchSize,
          blockMs: config.ingress.blockMs,
          claimIdleMs: config.delivery.claimIdle,
          logger: this.#logger,
          handle: async (entries) => {
            const outcome = await routeBatch(this.#deps, entries);
            this.#metrics.messagesIn.inc({ outcome: 'routed' }, outcome.routed);
            this.#metrics.messagesIn.inc({ outcome: 'dead' }, outcome.dead);
            this.#metrics.messagesIn.inc({ outcome: 'duplicate' }, outcome.duplicates);
            if (outcome.dead) this.#metrics.deadLetters.inc({ stage: 'ingress' }, outcome.dead);
          },
        },
        signal,
      );
    })().catch((err: Error) => {
      if (!signal.aborted) this.#logger.fatal({ err: err.message }, 'hub stopped');
    });
  }

  async stop(): Promise<void> {
    this.#controller.abort();
    this.#reader?.disconnect();
    await this.#running;
    await this.#heartbeat.stop();
  }
}
