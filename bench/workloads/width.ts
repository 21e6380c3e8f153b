/**
 * 5. Width: the routing rate at a fan-out of 1, 10 and 100 targets per
 * message (one hub process each, entries preloaded, as in routing); then a
 * mapping of 10,000 groups × 10 targets: how long it takes to load (parse
 * and validate in this process; hub start-up against a small mapping's),
 * the hub's RSS with it, and the routing rate through it.
 */
import { readFileSync } from 'node:fs';
import { validateMapping } from '../../core/mapping/validate.ts';
import matrixPlugin from '../../plugins/matrix/index.ts';
import { type BenchContext, dropPrefix, groupsMapping, writeMapping } from '../lib/context.ts';
import { messageFields } from '../lib/e2e.ts';
import { type RoutingFigures, preload, routeWithHub } from '../lib/routing.ts';
import { round, wallNow } from '../lib/stats.ts';
import { type Workload, check, fmt } from '../lib/workload.ts';

const FANOUTS: Array<{ targets: number; messages: number }> = [
  { targets: 1, messages: 20_000 },
  { targets: 10, messages: 5_000 },
  { targets: 100, messages: 1_000 },
];
const BIG_GROUPS = 10_000;
const BIG_TARGETS = 10;
const BIG_MESSAGES = 10_000;

async function routeOnce(ctx: BenchContext, name: string, mapping: Record<string, unknown>, messages: number, deliveries: number, to: (i: number) => string): Promise<RoutingFigures> {
  const prefix = ctx.prefix(name);
  const mappingFile = `${ctx.tempDir(name)}/mapping.json`;
  writeMapping(mappingFile, mapping);
  const stamp = wallNow();
  try {
    await preload(ctx.redis, `${prefix}:in`, messages, (i) => {
      const fields = messageFields(i, 1, stamp);
      fields[1] = to(i);
      return fields;
    });
    const { child, ...figures } = await routeWithHub(ctx, { prefix, mappingFile, messages, deliveries, name: `${name}-hub` });
    await child.stop();
    return figures;
  } finally {
    await dropPrefix(ctx.redis, prefix);
  }
}

export const width: Workload = {
  name: 'width',
  title: '5. Width (fan-out per message; a mapping of 10,000 groups × 10 targets)',
  async run(ctx: BenchContext) {
    const rows: Array<[string, string]> = [];
    const fanout: Record<string, RoutingFigures> = {};
    for (const { targets, messages } of FANOUTS) {
      const r = await routeOnce(ctx, `width-f${targets}`, groupsMapping(1, targets), messages, messages * targets, () => '#g0');
      fanout[targets] = r;
      rows.push([`fan-out ${targets}`, `${fmt.rate(r.messagesPerSecond)} messages · ${fmt.rate(r.deliveriesPerSecond)} deliveries · redis ${round((r.redisCpuSeconds / r.deliveries) * 1e6, 1)} µs CPU/delivery`]);
    }

    const big = groupsMapping(BIG_GROUPS, BIG_TARGETS);
    const dir = ctx.tempDir('width-big');
    writeMapping(`${dir}/probe.json`, big);
    const text = readFileSync(`${dir}/probe.json`, 'utf8');
    const rules = new Map([['matrix', { validate: (t: string) => matrixPlugin.validateTarget(t), normalize: (t: string) => matrixPlugin.normalizeTarget?.(t) ?? t }]]);
    const t0 = performance.now();
    const document = JSON.parse(text) as unknown;
    const t1 = performance.now();
    const validation = validateMapping(document, 'bench', rules);
    const t2 = performance.now();
    if (!validation.ok) throw new Error(`the big mapping does not validate: ${validation.errors.join('; ')}`);
    const r = await routeOnce(ctx, 'width-big', big, BIG_MESSAGES, BIG_MESSAGES * BIG_TARGETS, (i) => `#g${(i * 7919) % BIG_GROUPS}`);
    const small = fanout[1]!;
    rows.push([`${BIG_GROUPS.toLocaleString('en-US')} groups × ${BIG_TARGETS}: file`, `${(text.length / 2 ** 20).toFixed(1)} MB; JSON.parse ${fmt.ms(t1 - t0)} + validate ${fmt.ms(t2 - t1)} (in the bench process)`]);
    rows.push(['  hub start-up until consuming', `${fmt.ms(r.startupMs)} (small mapping: ${fmt.ms(small.startupMs)})`]);
    rows.push(['  routing (random groups)', `${fmt.rate(r.messagesPerSecond)} messages · ${fmt.rate(r.deliveriesPerSecond)} deliveries`]);
    rows.push(['  hub peak RSS', `${fmt.mb(r.peakRssMb)} (small mapping, fan-out 1: ${fmt.mb(small.peakRssMb)})`]);
    return {
      rows,
      figures: {
        fanout,
        bigMapping: {
          groups: BIG_GROUPS,
          targets: BIG_TARGETS,
          fileMb: round(text.length / 2 ** 20, 2),
          parseMs: round(t1 - t0, 1),
          validateMs: round(t2 - t1, 1),
          routing: r,
        },
      },
      checks: [check('hub peak RSS ≤ 100 MB (10,000 × 10 mapping)', r.peakRssMb, '<=', 100, 'MB')],
    };
  },
};
