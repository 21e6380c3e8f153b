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
import type { QueuedDelivery } from '../journal/delivery.ts';
import { enqueueBlock } from '../journal/enqueue.ts';
import { type MessageMeta, RECORD_META_FIELD } from '../journal/record.ts';
import type { Metrics } from '../metrics.ts';
import type { Keys } from '../redis/keys.ts';
import { Poller } from '../runtime/poller.ts';
import { digestMessage } from './message.ts';
import { readDigest } from './status.ts';
import type { DigestRoute } from './throttle-lua.ts';

export interface DigesterDeps {
  redis: Redis;
  keys: Keys;
  config: HubConfig;
  logger: Logger;
  metrics: Metrics;
}

const BATCH = 100;

export class Digester extends Poller {
  #deps: DigesterDeps;
  #logger: Logger;

  constructor(deps: DigesterDeps, options: { pollMs?: number } = {}) {
    super(options.pollMs, (err) => this.#logger.warn({ err: err.message }, 'digest poll failed; trying again'));
    this.#deps = deps;
    this.#logger = deps.logger.child({ component: 'digester' });
  }

  /** Close the windows due at `now`; resolves with the number of digests this process sent. */
  async tick(now = Date.now()): Promise<number> {
    const { redis, keys } = this.#deps;
    let sent = 0;
    // Many windows may close at once (a storm over many keys): batch after batch, until fewer than a batch are due.
    for (let due = [''], rounds = 0; due.length > 0 && rounds < 100 && !this.stopped; rounds++) {
      due = await redis.zrangebyscore(keys.digests, '-inf', now, 'LIMIT', 0, BATCH);
      let closed = 0;
      for (const id of due) {
        if (this.stopped) break;
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
    let digest = await readDigest(redis, keys, id);
    if (digest?.state === 'open') {
      const sealed = await redis.digestSeal(2, keys.digests, keys.throttleWindow(digest.group, digest.key), keys.digest(''), id, now);
      if (sealed === 'empty') {
        metrics.digests.inc({ outcome: 'empty' });
        return 'empty';
      }
      if (sealed !== 'sealed') return 'gone';
      // Read again: a message may have joined between the first read and the seal.
      digest = await readDigest(redis, keys, id);
    }
    if (digest?.state !== 'sealed') {
      // Sent (or expired with its retention) yet still listed: nothing is left to do for it.
      if (digest?.state !== 'open') await redis.zrem(keys.digests, id);
      return 'gone';
    }
    const routes = (await redis.smembers(`${keys.digest(id)}:routes`)).map((r) => JSON.parse(r) as DigestRoute).sort((a, b) => `${a[0]} ${a[1]}`.localeCompare(`${b[0]} ${b[1]}`));
    const opened = digest.opened ?? now;
    const message = digestMessage({
      group: digest.group,
      key: digest.key,
      count: digest.count,
      opened,
      first: digest.first ?? opened,
      last: digest.last ?? opened,
      latest: digest.latest,
    });
    const queued = routes.map(([channel, target, address], i): QueuedDelivery => ({ id: `${keys.prefix}:${id}:${i}`, channel, target, ...(address ? { address } : {}) }));
    const to = digest.group;
    const meta: MessageMeta = { to: [to], subject: message.subject, receivedAt: now, deliveries: queued.map((d) => [d.id, d.channel, d.target]) };
    const block = enqueueBlock(keys, queued, { entry: id, to, subject: message.subject, body: message.body, format: message.format, watch: '0' });
    const [status] = await redis.digestSend(
      4 + block.keys.length,
      keys.digests, keys.digest(id), keys.message(id), keys.events, ...block.keys,
      id, now, config.eventsMaxLen, config.recordRetention, RECORD_META_FIELD, JSON.stringify(meta), ...block.args,
    );
    if (status !== 'sent') return 'gone';
    metrics.digests.inc({ outcome: 'sent' });
    this.#logger.info({ digest: id, group: to, key: digest.key, held: digest.count, deliveries: queued.length }, 'digest sent');
    return 'sent';
  }
}
