import type { Redis } from 'ioredis';
import { fromPairs } from '../redis/fields.ts';
import type { Keys } from '../redis/keys.ts';
import { channelsDown } from '../runtime/channel-fault.ts';
import { aliveMembers } from '../runtime/heartbeat.ts';
import { HUB_GROUP } from '../ingress/router.ts';

export interface StreamStats {
  stream: string;
  length: number;
  /** Read by a consumer and not yet settled. */
  pending: number;
  /** Not yet read by the group. */
  lag: number;
}

export interface Overview {
  ingress: StreamStats;
  /** `down`: why some live process could not start the channel (its deliveries wait). */
  channels: Array<StreamStats & { channel: string; workers: number; down?: string }>;
  hubs: number;
  dead: number;
}

export async function streamStats(redis: Redis, stream: string, group: string): Promise<StreamStats> {
  const length = await redis.xlen(stream);
  let groups: unknown[][] = [];
  try {
    groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  } catch {
    // No stream yet: nothing pending, everything (nothing) lagging.
  }
  const info = groups.map((g) => fromPairs(g)).find((g) => g.name === group);
  return {
    stream,
    length,
    pending: Number(info?.pending ?? 0),
    lag: info ? Number(info.lag ?? length) : length,
  };
}

/** Backlog and live workers of every channel, for `hub status` and /metrics. */
export async function overview(redis: Redis, keys: Keys, channels: Iterable<string>): Promise<Overview> {
  const names = [...channels];
  const down = await channelsDown(redis, keys, names);
  const rows = await Promise.all(
    names.map(async (channel) => ({
      channel,
      ...(await streamStats(redis, keys.deliver(channel), channel)),
      workers: (await aliveMembers(redis, keys.workers(channel))).length,
      ...(down.has(channel) ? { down: down.get(channel)! } : {}),
    })),
  );
  return {
    ingress: await streamStats(redis, keys.in, HUB_GROUP),
    channels: rows,
    hubs: (await aliveMembers(redis, keys.hubs)).length,
    dead: await redis.xlen(keys.dead),
  };
}
