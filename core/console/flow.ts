/**
 * The console's charts: outcomes (sent, retrying, dead) per channel and
 * minute over the last hour, counted from `<prefix>:events`. Read
 * incrementally: each poll reads only the events since the last one.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/keys.ts';

const MINUTE = 60_000;
export const MINUTES = 60;
/** Events read per round trip; a poll reads at most {@link MAX_PER_POLL}, the rest on the next one. */
const PAGE = 5000;
const MAX_PER_POLL = 50_000;
const KINDS = ['sent', 'retrying', 'dead'] as const;
type Kind = (typeof KINDS)[number];

export interface FlowSeries {
  /** The start of each minute (seconds, as the charts take them), oldest first. */
  minutes: number[];
  /** Per channel and kind, one count per minute. */
  channels: Record<string, Record<Kind, number[]>>;
}

export class FlowHistory {
  readonly #redis: Redis;
  readonly #keys: Keys;
  /** minute (ms) → channel → kind → count */
  readonly #counts = new Map<number, Map<string, Record<Kind, number>>>();
  #after: string | undefined;
  #reading: Promise<void> | undefined;

  constructor(redis: Redis, keys: Keys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async series(now = Date.now()): Promise<FlowSeries> {
    await (this.#reading ??= this.#read(now).finally(() => (this.#reading = undefined)));
    const first = Math.floor(now / MINUTE) * MINUTE - (MINUTES - 1) * MINUTE;
    for (const minute of this.#counts.keys()) if (minute < first) this.#counts.delete(minute);
    const minutes = Array.from({ length: MINUTES }, (_, i) => first + i * MINUTE);
    const channels: FlowSeries['channels'] = {};
    minutes.forEach((minute, i) => {
      for (const [channel, kinds] of this.#counts.get(minute) ?? []) {
        const row = (channels[channel] ??= { sent: new Array(MINUTES).fill(0), retrying: new Array(MINUTES).fill(0), dead: new Array(MINUTES).fill(0) });
        for (const kind of KINDS) row[kind][i] = kinds[kind];
      }
    });
    return { minutes: minutes.map((m) => m / 1000), channels };
  }

  async #read(now: number): Promise<void> {
    let from = this.#after === undefined ? String(now - MINUTES * MINUTE) : `(${this.#after}`;
    for (let read = 0; read < MAX_PER_POLL; ) {
      const rows = (await this.#redis.xrange(this.#keys.events, from, '+', 'COUNT', PAGE)) as Array<[string, string[]]>;
      for (const [id, flat] of rows) this.#count(id, flat);
      read += rows.length;
      if (rows.length === 0) return;
      this.#after = rows.at(-1)![0];
      from = `(${this.#after}`;
      if (rows.length < PAGE) return;
    }
  }

  #count(id: string, flat: string[]): void {
    let type: string | undefined;
    let channel: string | undefined;
    for (let i = 0; i < flat.length; i += 2) {
      if (flat[i] === 'type') type = flat[i + 1];
      else if (flat[i] === 'channel') channel = flat[i + 1];
    }
    if (!channel || !(KINDS as readonly string[]).includes(type ?? '')) return;
    const minute = Math.floor(Number(id.split('-')[0]) / MINUTE) * MINUTE;
    let byChannel = this.#counts.get(minute);
    if (!byChannel) this.#counts.set(minute, (byChannel = new Map()));
    let kinds = byChannel.get(channel);
    if (!kinds) byChannel.set(channel, (kinds = { sent: 0, retrying: 0, dead: 0 }));
    kinds[type as Kind] += 1;
  }
}
