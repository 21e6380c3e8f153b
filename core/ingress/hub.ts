import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubConfig } from '../config/schema.ts';
import type { MappingStore } from '../mapping/store.ts';
import type { Metrics } from '../metrics.ts';
import type { Keys } from '../redis/keys.ts';
import { duplicateConnection } from '../redis/connect.ts';
import { type StreamEntry, consumeStream } from '../redis/stream-consumer.ts';
import { Heartbeat } from '../runtime/heartbeat.ts';
import { Lease } from '../redis/lease.ts';
import { HUB_GROUP, routeBatch } from './router.ts';

/**
 * The hub: consumer group `hub` on the ingress stream, routing each entry
 * through the mapping in force into the channels' delivery streams. It
 * consumes nothing until a mapping is in force, and only while it holds the
 * hub lease (one active hub; the others stand by).
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
  #lease: Lease;

  constructor(deps: { redis: Redis; keys: Keys; config: HubConfig; mappingStore: MappingStore; channelNames: ReadonlySet<string>; logger: Logger; metrics: Metrics; consumerName: string }) {
    this.#deps = { redis: deps.redis, keys: deps.keys, config: deps.config, mappingStore: deps.mappingStore, channels: deps.channelNames };
    this.#logger = deps.logger.child({ component: 'hub' });
    this.#metrics = deps.metrics;
    this.#consumer = deps.consumerName;
    this.#heartbeat = new Heartbeat(deps.redis, deps.keys.hubs, deps.consumerName);
    this.#lease = new Lease(deps.redis, deps.keys.hubLease, deps.consumerName);
  }

  start(): void {
    const signal = this.#controller.signal;
    this.#running = (async () => {
      const { mappingStore, redis, keys, config } = this.#deps;
      if (!mappingStore.current) this.#logger.warn('no mapping in force yet; consuming nothing until one is loaded');
      await mappingStore.ready(signal);
      this.#heartbeat.start();
      this.#reader = duplicateConnection(redis, `hub:${this.#consumer}:ingress`);
      while (await this.#lease.acquire(signal, () => this.#logger.info('another hub is active; standing by'))) {
        const term = new AbortController();
        const stop = () => term.abort();
        signal.addEventListener('abort', stop, { once: true });
        this.#lease.hold(term.signal, () => {
          this.#logger.warn('lost the hub lease; standing by');
          term.abort();
        });
        this.#logger.info({ stream: keys.in, consumer: this.#consumer, active: true }, 'hub consuming');
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
            // The previous active hub is gone: what it left pending is routed first, in order.
            claimAllFirst: true,
            overlap: true,
            logger: this.#logger,
            handle: (entries) => this.#route(entries),
          },
          term.signal,
        );
        signal.removeEventListener('abort', stop);
        term.abort();
      }
      await this.#lease.release();
    })().catch((err: Error) => {
      if (!signal.aborted) this.#logger.fatal({ err: err.message }, 'hub stopped');
    });
  }

  async #route(entries: StreamEntry[]): Promise<void> {
    const outcome = await routeBatch(this.#deps, entries);
    this.#metrics.messagesIn.inc({ outcome: 'routed' }, outcome.routed);
    this.#metrics.messagesIn.inc({ outcome: 'dead' }, outcome.dead);
    this.#metrics.messagesIn.inc({ outcome: 'duplicate' }, outcome.duplicates);
    if (outcome.held) this.#metrics.held.inc(outcome.held);
    if (outcome.dead) this.#metrics.deadLetters.inc({ stage: 'ingress' }, outcome.dead);
  }

  async stop(): Promise<void> {
    this.#controller.abort();
    this.#reader?.disconnect();
    await this.#running;
    await this.#heartbeat.stop();
  }
}
