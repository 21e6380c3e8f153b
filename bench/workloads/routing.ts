/**
 * 2. Routing alone: 100,000 entries preloaded, one hub process until all are
 * fanned out into the matrix deliver stream; against it, the raw Redis
 * Streams ceiling (bench/lib/raw-router.ts) with the same batching.
 */
import { hubMemoryFloor, rssFloor } from '../lib/bare-node.ts';
import { type BenchContext, dropPrefix, groupsMapping, writeMapping } from '../lib/context.ts';
import { messageFields } from '../lib/e2e.ts';
import { preload, routeRaw, routeWithHub } from '../lib/routing.ts';
import { round, wallNow } from '../lib/stats.ts';
import { type Workload, check, fmt } from '../lib/workload.ts';

const MESSAGES = 100_000;

export const routing: Workload = {
  name: 'routing',
  title: `2. Routing alone (${MESSAGES.toLocaleString('en-US')} entries preloaded, 10 groups × 1 room)`,
  async run(ctx: BenchContext) {
    const prefix = ctx.prefix('routing');
    const mappingFile = `${ctx.tempDir('routing')}/mapping.json`;
    writeMapping(mappingFile, groupsMapping(10));
    const stamp = wallNow();
    try {
      const preloadMs = await preload(ctx.redis, `${prefix}:in`, MESSAGES, (i) => messageFields(i, 10, stamp));
      const hub = await routeWithHub(ctx, { prefix, mappingFile, messages: MESSAGES, deliveries: MESSAGES, name: 'routing-hub' });
      await hub.child.stop();
      await dropPrefix(ctx.redis, prefix);

      await preload(ctx.redis, `${prefix}:raw:in`, MESSAGES, (i) => messageFields(i, 10, stamp));
      const raw = await routeRaw(ctx, { input: `${prefix}:raw:in`, output: `${prefix}:raw:out`, messages: MESSAGES });
      const ratio = hub.messagesPerSecond / raw.messagesPerSecond;
      const memory = await hubMemoryFloor(ctx);
      const { child: _child, ...hubFigures } = hub;
      // Redis runs one command at a time: its CPU per routed message bounds routing whatever the hub does.
      const redisUs = (hub.redisCpuSeconds * 1e6) / MESSAGES;
      const perMessage = (usec: number) => (usec / MESSAGES).toFixed(1);
      const scripts = Object.entries(hub.redisCommands).filter(([c]) => c.startsWith('eval')).reduce((sum, [, s]) => sum + s.usec, 0);
      const inner = Object.entries(hub.redisCommands)
        .filter(([c, s]) => !c.startsWith('eval') && s.calls >= MESSAGES / 2)
        .sort((a, b) => b[1].usec - a[1].usec);
      const innerUsec = inner.reduce((sum, [, s]) => sum + s.usec, 0);
      return {
        rows: [
          ['hub routing', `${fmt.rate(hub.messagesPerSecond)} (${hub.seconds.toFixed(2)} s)`],
          ['raw XREADGROUP/XADD/XACK ceiling', `${fmt.rate(raw.messagesPerSecond)} (${raw.seconds.toFixed(2)} s)`],
          ['ratio routing / ceiling', fmt.pct(ratio)],
          ['CPU s hub / redis (hub run)', `${hub.cpuSeconds} (incl. start-up) / ${hub.redisCpuSeconds}`],
          ['CPU s raw loop / redis (raw run)', `${raw.cpuSeconds} / ${raw.redisCpuSeconds}`],
          ['Redis CPU per routed message', `${redisUs.toFixed(1)} µs, of which the route script ${perMessage(scripts)} µs, its commands ${perMessage(innerUsec)} µs (${inner.map(([c, s]) => `${c.toUpperCase()} ${perMessage(s.usec)}`).join(', ')}); raw loop ${((raw.redisCpuSeconds * 1e6) / MESSAGES).toFixed(1)} µs`],
          ['  bound: Redis alone, one core', `${fmt.rate(1e6 / redisUs)} = ${fmt.pct(1e6 / redisUs / raw.messagesPerSecond)} of the ceiling`],
          ['hub peak RSS', fmt.mb(hub.peakRssMb)],
          memory.row,
          ['preload (pipelined XADD)', `${fmt.rate(MESSAGES / (preloadMs / 1000))}`],
        ],
        figures: { messages: MESSAGES, hub: hubFigures, ceiling: raw, ratio: round(ratio, 3), preloadMs: Math.round(preloadMs), bareNode: memory.floor },
        checks: [
          check('routing ≥ 50 % of the raw Redis Streams ceiling', round(ratio * 100, 1), '>=', 50, '%', {
            value: round((1e6 / redisUs / raw.messagesPerSecond) * 100, 1),
            what: "Redis alone: one core at Redis's CPU per routed message (one command at a time)",
          }),
          check('hub peak RSS ≤ 100 MB (routing 100k)', hub.peakRssMb, '<=', 100, 'MB', rssFloor(memory.floor)),
        ],
      };
    } finally {
      await dropPrefix(ctx.redis, prefix);
    }
  },
};
