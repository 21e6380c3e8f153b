/**
 * The digester: run by every hub process, it polls the digests index
 * (`<prefix>:digests`, digest id → when its window closes) and closes what is
 * due: SEAL (an empty window is deleted and sends nothing), then SEND the
 * digest to the routes its held messages had. Nothing lives in memory: a
 * window sealed by a process that died before sending stays in the index,
 * and the next poll of any hub sends it.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubConfig } from '../config/schema.ts';
import type { BodyFormat } from '../format.ts';
import type { QueuedDelivery } from '../journal/delivery.ts';
import { enqueueBlock } from '../journal/enqueue.ts';
import { type MessageMeta, RECORD_META_FIELD } from '../journal/record.ts';
import type { Metrics } from '../metrics.ts';
import type { Keys } from '../redis/keys.ts';
import { Poller } from '../runtime/poller.ts';
import { digestMessage } from './message.ts';
import type { DigestRoute } from './throttle-lua.ts';

export interface DigesterDeps {
  redis: Redis;
  keys: Keys;
  config: HubConfig;
  logger: Logger;
  metrics: Metrics;
}

export const DEFAULT_POLL_MS = 250;
const BATCH = 100;

export class Digester {
  #deps: DigesterDeps;
  #logger: Logger;
  #poller: Poller;

  constructor(deps: DigesterDeps, options: { pollMs?: number } = {}) {
    this.#deps = deps;
    this.#logger = deps.logger.child({ component: 'digester' });
    this.#poller = new Poller(() => this.tick(), options.pollMs ?? DEFAULT_POLL_MS, (err) => this.#logger.warn({ err: err.message }, 'digest poll failed; trying again'));
  }

  start(): void {
    this.#poller.start();
  }

  async stop(): Promise<void> {
    await this.#poller.stop();
  }

  /** Close the windows due at `now`; resolves with the number of digests this process sent. */
  async tick(now = Date.now()): Promise<number> {
    const { redis, keys } = this.#deps;
    let sent = 0;
    // Many windows may close at once (a storm over many keys): batch after batch, until fewer than a batch are due.
    for (let due = [''], rounds = 0; due.length > 0 && rounds < 100 && !this.#poller.stopped; rounds++) {
      due = await redis.zrangebyscore(keys.digests, '-inf', now, 'LIMIT', 0, BATCH);
      let closed = 0;
      for (const id of due) {
        if (this.#poller.stopped) break;
        const result = await this.#close(id, now);
        if (result === 'sent') sent += 1;
        if (result !== 'gone') closed += 1;
      }
      // What another hub is closing at the same time comes back until it is done: no busy loop over it.
      if (due.length < BATCH || closed === 0) break;
    }
    return sent;
  }

  async #close(id: string, now: number): Promise<'sent' | 'empty' | 'gone'> {
    const { redis, keys, config, metrics } = this.#deps;
    let hash = await redis.hgetall(keys.digest(id));
    if (hash.state === 'open') {
      const sealed = await redis.digestSeal(2, keys.digests, keys.throttleWindow(hash.group ?? '', hash.key ?? ''), keys.digest(''), id, now);
      if (sealed === 'empty') {
        metrics.digests.inc({ outcome: 'empty' });
        return 'empty';
      }
      if (sealed !== 'sealed') return 'gone';
      // Read again: a message may have joined between the first read and the seal.
      hash = await redis.hgetall(keys.digest(id));
    }
    if (hash.state !== 'sealed') {
      // Sent (or expired with its retention) yet still listed: nothing is left to do for it.
      if (hash.state !== 'open') await redis.zrem(keys.digests, id);
      return 'gone';
    }
    const routes = (await redis.smembers(`${keys.digest(id)}:routes`)).map((r) => JSON.parse(r) as DigestRoute).sort((a, b) => `${a[0]} ${a[1]}`.localeCompare(`${b[0]} ${b[1]}`));
    const message = digestMessage({
      group: hash.group ?? '',
      key: hash.key ?? '',
      count: Number(hash.count ?? 0),
      opened: Number(hash.opened),
      first: Number(hash.first ?? hash.opened),
      last: Number(hash.last ?? hash.opened),
      latest: { ...(hash.subject ? { subject: hash.subject } : {}), body: hash.body ?? '', format: (hash.format ?? 'html') as BodyFormat },
    });
    const queued = routes.map(([channel, target, address], i): QueuedDelivery => ({ id: `${keys.prefix}:${id}:${i}`, channel, target, ...(address ? { address } : {}) }));
    const to = hash.group ?? '';
    const meta: MessageMeta = { to: [to], subject: message.subject, receivedAt: now, deliveries: queued.map((d) => [d.id, d.channel, d.target]) };
    const block = enqueueBlock(keys, queued, { entry: id, to, subject: message.subject, body: message.body, format: message.format, watch: '0' });
    const [status] = await redis.digestSend(
      4 + block.keys.length,
      keys.digests, keys.digest(id), keys.message(id), keys.events, ...block.keys,
      id, now, config.eventsMaxLen, config.recordRetention, RECORD_META_FIELD, JSON.stringify(meta), ...block.args,
    );
    if (status !== 'sent') return 'gone';
    metrics.digests.inc({ outcome: 'sent' });
    this.#logger.info({ digest: id, group: to, key: hash.key, held: Number(hash.count ?? 0), deliveries: queued.length }, 'digest sent');
    return 'sent';
  }
}
