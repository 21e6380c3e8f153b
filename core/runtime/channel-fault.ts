import type { Redis } from 'ioredis';
import type { Keys } from '../redis/keys.ts';
import { Beacon, HEARTBEAT_MS } from './heartbeat.ts';

/**
 * A channel this process was to run and could not start: its reason is kept
 * in Redis, refreshed like a heartbeat and gone soon after the process is,
 * so that `hub status` and `hub plugins`, run elsewhere, can say it is down.
 */
export class ChannelFault extends Beacon {
  readonly channel: string;
  readonly reason: string;

  constructor(redis: Redis, keys: Keys, channel: string, reason: string) {
    const key = keys.channelDown(channel);
    super(
      () => redis.set(key, reason, 'PX', 3 * HEARTBEAT_MS),
      () => redis.del(key),
    );
    this.channel = channel;
    this.reason = reason;
  }
}

/** The channels some live process reports down, with the reason. */
export async function channelsDown(redis: Redis, keys: Keys, channels: Iterable<string>): Promise<Map<string, string>> {
  const names = [...channels];
  if (names.length === 0) return new Map();
  const reasons = await redis.mget(...names.map((c) => keys.channelDown(c)));
  return new Map(names.flatMap((name, i) => (reasons[i] ? [[name, reasons[i]] as [string, string]] : [])));
}
