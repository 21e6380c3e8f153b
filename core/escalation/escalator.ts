/**
 * The escalator: run by every hub process, it polls the due index
 * (`<prefix>:escalations`, entry id → next due time) and fires what is due.
 * Firing is one FIRE script call that re-checks the due time and the
 * escalation's version, queues the round's deliveries into the channels'
 * streams, and moves the due time (or ends the escalation): whichever process
 * gets there first fires it, any other finds it gone. Nothing lives in
 * memory, so a restart or a crash loses and doubles nothing.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubConfig } from '../config/schema.ts';
import type { Metrics } from '../metrics.ts';
import type { Keys } from '../redis/keys.ts';
import { Poller } from '../runtime/poller.ts';
import type { QueuedDelivery } from '../journal/delivery.ts';
import { enqueueBlock } from '../journal/enqueue.ts';
import { readMessageRecord } from '../journal/record.ts';
import type { StoredRoute } from './arm.ts';
import { type WatchedDelivery, reminderMessage } from './message.ts';

export interface EscalatorDeps {
  redis: Redis;
  keys: Keys;
  config: HubConfig;
  logger: Logger;
  metrics: Metrics;
}

const BATCH = 100;

/** An escalation's delivery as kept in its hash: id, channel, target, round. */
export type EscalationDelivery = [string, string, string, number];

export class Escalator extends Poller {
  #deps: EscalatorDeps;
  #watching: ReadonlySet<string>;
  #logger: Logger;

  /** `watching`: the channels whose plugins watch for acknowledgements (only deliveries to those can be read). */
  constructor(deps: EscalatorDeps, options: { watching: ReadonlySet<string>; pollMs?: number }) {
    super(options.pollMs, (err) => this.#logger.warn({ err: err.message }, 'escalation poll failed; trying again'));
    this.#deps = deps;
    this.#watching = options.watching;
    this.#logger = deps.logger.child({ component: 'escalator' });
  }

  /** Fire what is due at `now`; resolves with the number of rounds this process fired. */
  async tick(now = Date.now()): Promise<number> {
    const { redis, keys } = this.#deps;
    const due = await redis.zrangebyscore(keys.escalations, '-inf', now, 'LIMIT', 0, BATCH);
    let fired = 0;
    for (const entry of due) {
      if (this.stopped) break;
      // A stale read (an acknowledgement or another process changed it meanwhile) is read again once.
      for (let tries = 0; tries < 3; tries++) {
        const result = await this.#fire(entry, now);
        if (result === 'fired') fired += 1;
        if (result !== 'stale') break;
      }
    }
    return fired;
  }

  async #fire(entry: string, now: number): Promise<'fired' | 'closed' | 'stale' | 'gone'> {
    const { redis, keys, config, metrics } = this.#deps;
    const [hash, record] = await Promise.all([redis.hgetall(keys.escalation(entry)), redis.hgetall(keys.message(entry))]);
    if (!hash.state) {
      await redis.zrem(keys.escalations, entry); // expired with its retention
      return 'gone';
    }
    const { meta, delivery } = readMessageRecord(record);
    const watched: WatchedDelivery[] = (meta.deliveries ?? [])
      .filter(([, channel]) => this.#watching.has(channel))
      .map(([id, channel, target]) => {
        const saved = delivery(id);
        return {
          channel,
          target,
          state: saved?.state ?? 'queued',
          ...(saved?.at ? { at: saved.at } : {}),
          ...(saved?.details?.link ? { link: saved.details.link } : {}),
          ...(saved?.peerId ? { peerId: saved.peerId } : {}),
          ...(saved?.error ? { error: saved.error } : {}),
        };
      });
    const readBy = Object.keys(hash).filter((f) => f.startsWith('read:')).map((f) => f.slice(5));
    const routes = this.#routesDue(hash, readBy);
    const base = [keys.escalations, keys.escalation(entry), keys.events];
    const common = [entry, hash.version ?? '0', now];
    if (watched.length === 0 || routes.length === 0) {
      // Nothing was sent where it could be read (no delivery on a watching channel), or nobody is left to nag.
      const final = watched.length === 0 ? 'unwatched' : 'acknowledged';
      const [status] = await redis.escalationFire(base.length, ...base, ...common, 'close', '', final, config.eventsMaxLen, hash.sent ?? '[]');
      if (status === 'closed') {
        metrics.escalations.inc({ outcome: 'due' });
        this.#logger.info({ entry, state: final }, 'escalation ended without a reminder');
      }
      return status as 'closed' | 'stale' | 'gone';
    }

    const round = Number(hash.round ?? 0) + 1;
    const rounds = 1 + Number(hash.repeat ?? 0);
    const everyMs = Number(hash.everyMs);
    const scheduled = Number(hash.due ?? now);
    // The next due time follows the schedule; after an outage, it counts from now rather than firing the missed rounds at once.
    const next = round >= rounds ? '' : String(scheduled + everyMs > now ? scheduled + everyMs : now + everyMs);
    const reminder = reminderMessage({
      groups: meta.to ?? (JSON.parse(hash.groups ?? '[]') as string[]),
      ...(hash.subject ? { subject: hash.subject } : {}),
      excerpt: hash.excerpt ?? '',
      ...(meta.receivedAt !== undefined ? { receivedAt: meta.receivedAt } : {}),
      afterMs: Number(hash.afterMs),
      round,
      rounds,
      deliveries: watched,
      readBy,
      now,
    });
    const queued = routes.map(([channel, target, address], i): QueuedDelivery => ({ id: `${keys.prefix}:${entry}:esc${round}:${i}`, channel, target, ...(address ? { address } : {}) }));
    const sent = [...(JSON.parse(hash.sent ?? '[]') as EscalationDelivery[]), ...queued.map((d): EscalationDelivery => [d.id, d.channel, d.target, round])];
    const block = enqueueBlock(keys, queued, {
      entry,
      to: (meta.to ?? []).join(','),
      subject: reminder.subject,
      body: reminder.body,
      format: reminder.format,
      escalation: String(round),
      watch: '1',
    });
    const result = await redis.escalationFire(
      base.length + block.keys.length,
      ...base, ...block.keys,
      ...common, 'fire', next, 'done', config.eventsMaxLen, JSON.stringify(sent), ...block.args,
    );
    if (result[0] !== 'fired') return result[0] as 'stale' | 'gone';
    metrics.escalations.inc({ outcome: 'due' });
    metrics.escalations.inc({ outcome: 'sent' });
    this.#logger.info({ entry, round, rounds, deliveries: queued.length, next: next ? new Date(Number(next)).toISOString() : undefined }, 'escalation fired');
    return 'fired';
  }

  /** Who is nagged this round: the group's routes while nobody has read it, and every listed person who has not. */
  #routesDue(hash: Record<string, string>, readBy: string[]): StoredRoute[] {
    const out = new Map<string, StoredRoute>();
    const add = (routes: StoredRoute[]) => {
      for (const route of routes) out.set(`${route[0]}\u0000${route[1]}`, route);
    };
    if (readBy.length === 0) add(JSON.parse(hash.routes ?? '[]') as StoredRoute[]);
    const users = hash.users ? (JSON.parse(hash.users) as Record<string, StoredRoute[]>) : {};
    for (const [user, routes] of Object.entries(users)) if (!readBy.includes(user)) add(routes);
    return [...out.values()];
  }
}
