import type { Cradle } from '../container.ts';
import { overview } from '../status/streams.ts';

/** Gauges read from Redis at scrape time: backlog per stream, live workers per channel, mapping revision. */
export function registerStreamGauges(cradle: Cradle, runsHub: boolean): void {
  const { metrics, redis, keys, channelNames, mappingStore, redisHealth } = cradle;
  let snapshot: ReturnType<typeof overview> | undefined;
  // One Redis round of questions per scrape, shared by the gauges below;
  // none while Redis is away (the scrape would wait for it), so the series are absent then.
  const read = async () => {
    if (!redisHealth.up) return undefined;
    return (snapshot ??= overview(redis, keys, channelNames).finally(() => setTimeout(() => (snapshot = undefined), 100)));
  };
  metrics.gauge('hub_stream_length', 'Entries in a stream.', ['stream'], async (g) => {
    const o = await read();
    if (!o) return;
    g.set({ stream: o.ingress.stream }, o.ingress.length);
    for (const c of o.channels) g.set({ stream: c.stream }, c.length);
    g.set({ stream: keys.dead }, o.dead);
  });
  metrics.gauge('hub_stream_pending', 'Entries read and not yet settled.', ['stream'], async (g) => {
    const o = await read();
    if (!o) return;
    for (const s of [o.ingress, ...o.channels]) g.set({ stream: s.stream }, s.pending);
  });
  metrics.gauge('hub_stream_lag', 'Entries not yet read by their consumer group.', ['stream'], async (g) => {
    const o = await read();
    if (!o) return;
    for (const s of [o.ingress, ...o.channels]) g.set({ stream: s.stream }, s.lag);
  });
  metrics.gauge('hub_workers_alive', 'Live worker processes per channel (0: deliveries wait).', ['channel'], async (g) => {
    for (const c of (await read())?.channels ?? []) g.set({ channel: c.channel }, c.workers);
  });
  metrics.gauge('hub_throttle_windows', 'Throttle windows whose digest is not sent yet (open, or closed and being sent).', [], async (g) => {
    if (redisHealth.up) g.set(await redis.zcard(keys.digests));
  });
  if (runsHub) {
    mappingStore.on('change', (mapping) => {
      metrics.mappingRevision.reset();
      metrics.mappingRevision.set({ revision: mapping.revision, groups: String(mapping.groups.size) }, 1);
    });
    const current = mappingStore.current;
    if (current) metrics.mappingRevision.set({ revision: current.revision, groups: String(current.groups.size) }, 1);
  }
}
