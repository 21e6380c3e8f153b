/**
 * 7. Routing with `throttle` on, against the same run without it: 40,000
 * entries preloaded, each with a `key` (10 keys, one per group), one hub
 * until the ingress stream is drained. Without throttle every entry becomes a
 * delivery; with a 1 h window on every group, the first of each key goes out
 * and every other entry is held (the window bookkeeping, the held list and a
 * `folded` event, in the same script call). And the worst case for throttle:
 * every entry a key of its own, so that each one goes out and opens a window.
 * Timed by Redis's clock: the first to the last event the routing wrote.
 */
import { type BenchContext, dropPrefix, groupsMapping, hubReady, startHub, writeMapping } from '../lib/context.ts';
import { messageFields } from '../lib/e2e.ts';
import { waitFor } from '../lib/proc.ts';
import { cpuSecondsOf, parseRedisCpu } from '../lib/proc-stats.ts';
import { preload, streamSpanMs } from '../lib/routing.ts';
import { round, wallNow } from '../lib/stats.ts';
import { type Workload, check, fmt } from '../lib/workload.ts';

const MESSAGES = 40_000;
const GROUPS = 10;

interface Run {
  seconds: number;
  messagesPerSecond: number;
  deliveries: number;
  held: number;
  cpuSeconds: number;
  redisCpuSeconds: number;
}

type Mode = 'off' | 'repeats' | 'distinct';

async function routeAll(ctx: BenchContext, mode: Mode): Promise<Run> {
  const name = `throttle-${mode}`;
  const throttled = mode !== 'off';
  const prefix = ctx.prefix(name);
  const mappingFile = `${ctx.tempDir(name)}/mapping.json`;
  const mapping = groupsMapping(GROUPS) as Record<string, Record<string, unknown>>;
  if (throttled) for (const group of Object.values(mapping)) group.throttle = { window: '1h' };
  writeMapping(mappingFile, mapping);
  const stamp = wallNow();
  try {
    await preload(ctx.redis, `${prefix}:in`, MESSAGES, (i) => [...messageFields(i, GROUPS, stamp), 'key', mode === 'distinct' ? `k${i}` : `k${i % GROUPS}`]);
    const redisCpuBefore = parseRedisCpu(await ctx.redis.info('cpu'));
    const hub = await startHub(ctx, { prefix, mappingFile, name: `${name}-hub`, wait: false });
    try {
      await hubReady(ctx, prefix, hub);
      await waitFor('the ingress stream drained', async () => (await ctx.redis.xlen(`${prefix}:in`)) === 0, { timeoutMs: 180_000, everyMs: 50, watch: [hub] });
      const cpuSeconds = cpuSecondsOf(hub.pid);
      const redisCpuSeconds = parseRedisCpu(await ctx.redis.info('cpu')) - redisCpuBefore;
      const seconds = (await streamSpanMs(ctx.redis, `${prefix}:events`)) / 1000;
      const deliveries = await ctx.redis.xlen(`${prefix}:deliver:matrix`);
      return { seconds: round(seconds, 3), messagesPerSecond: round(MESSAGES / seconds, 0), deliveries, held: MESSAGES - deliveries, cpuSeconds: round(cpuSeconds, 2), redisCpuSeconds: round(redisCpuSeconds, 2) };
    } finally {
      await hub.stop();
    }
  } finally {
    await dropPrefix(ctx.redis, prefix);
  }
}

export const throttle: Workload = {
  name: 'throttle',
  title: `7. Routing with throttle on vs off (${MESSAGES.toLocaleString('en-US')} keyed entries preloaded, ${GROUPS} groups × 1 room, ${GROUPS} keys)`,
  async run(ctx: BenchContext) {
    const off = await routeAll(ctx, 'off');
    const on = await routeAll(ctx, 'repeats');
    const distinct = await routeAll(ctx, 'distinct');
    const ratio = on.messagesPerSecond / off.messagesPerSecond;
    const distinctRatio = distinct.messagesPerSecond / off.messagesPerSecond;
    return {
      rows: [
        ['routing, no throttle', `${fmt.rate(off.messagesPerSecond)} (${off.seconds.toFixed(2)} s, ${off.deliveries} deliveries)`],
        ['routing, throttle 1h on every group', `${fmt.rate(on.messagesPerSecond)} (${on.seconds.toFixed(2)} s, ${on.deliveries} deliveries, ${on.held} held)`],
        ['routing, throttle on, every key new', `${fmt.rate(distinct.messagesPerSecond)} (${distinct.seconds.toFixed(2)} s, ${distinct.deliveries} deliveries, a window opened for each)`],
        ['ratio throttle on / off (repeats held)', fmt.pct(ratio)],
        ['ratio throttle on / off (every key new)', fmt.pct(distinctRatio)],
        ['CPU s hub, off / repeats / new keys (incl. start-up)', `${off.cpuSeconds} / ${on.cpuSeconds} / ${distinct.cpuSeconds}`],
        ['CPU s redis, off / repeats / new keys', `${off.redisCpuSeconds} / ${on.redisCpuSeconds} / ${distinct.redisCpuSeconds}`],
      ],
      figures: { messages: MESSAGES, off, on, distinct, ratio: round(ratio, 3), distinctRatio: round(distinctRatio, 3) },
      checks: [
        check('routing with throttle (repeats held) ≥ 50 % of routing without, same run', round(ratio * 100, 1), '>=', 50, '%'),
        check('routing with throttle (every key new) ≥ 50 % of routing without, same run', round(distinctRatio * 100, 1), '>=', 50, '%'),
      ],
    };
  },
};
