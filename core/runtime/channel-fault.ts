import type { Redis } from 'ioredis';
import { briefly } from '../redis/connect.ts';
import type { Keys } from '../redis/keys.ts';
import { HEARTBEAT_MS } from './heartbeat.ts';

/**
 * A channel this process was to run and could not start: its reason is kept
 * in Redis, refreshed like a heartbeat and gone soon after the process is,
 * so that `hub status` and `hub plugins`, run elsewhere, can say it is down.
 */
export class ChannelFault {
  #timer: NodeJS.Timeout | undefined;
  readonly #redis: Redis;
  readonly #key: string;
  readonly channel: string;
  readonly reason: string;

  constructor(redis: Redis, keys: Keys, channel: string, reason: string) {
    this.#redis = redis;
    this.#key = keys.channelDown(channel);
    this.channel = channel;
    this.reason = reason;
  }

  start(): void {
    const report = () => void this.#redis.set(this.#key, this.reason, 'PX', 3 * HEARTBEAT_MS).catch(() => {});
    report();
    this.#timer = setInterval(report, HEARTBEAT_MS).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await briefly(this.#redis.del(this.#key));
  }
}

/** The channels some live process reports down, with the reason. */
export async function channelsDown(redis: Redis, keys: Keys, channels: Iterable<string>): Promise<Map<string, string>> {
  const names = [...channels];
  if (names.length === 0) return new Map();
  const reasons = await redis.mget(...names.map((c) => keys.channelDown(c)));
  return new Map(names.flatMap((name, i) => (reasons[i] ? [[name, reasons[i]] as [string, string]] : [])));
}
