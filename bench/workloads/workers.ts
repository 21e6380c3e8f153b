/**
 * 6. Workers: one matrix worker process against two (10,000 messages each);
 * then two workers with every 10th send answered 429 M_LIMIT_EXCEEDED
 * (retry_after_ms 50): everything delivered, nothing twice (distinct
 * transaction ids against events; (room, message) pairs seen twice), and the
 * rate achieved.
 */
import type { BenchContext } from '../lib/context.ts';
import { type E2EResult, runEndToEnd } from '../lib/e2e.ts';
import { startHomeserver } from '../lib/homeserver-client.ts';
import { round } from '../lib/stats.ts';
import { type Check, type Workload, check, fmt } from '../lib/workload.ts';

const MESSAGES = 10_000;

function cpuOf(e2e: E2EResult, suffix: string): number {
  return round(e2e.processes.filter((p) => p.name.includes(suffix)).reduce((sum, p) => sum + p.cpuSeconds, 0), 2);
}

export const workers: Workload = {
  name: 'workers',
  title: `6. Workers (1 vs 2 matrix worker processes; 429 on every 10th send; ${MESSAGES.toLocaleString('en-US')} messages each; 2 workers at 1,000/s)`,
  async run(ctx: BenchContext) {
    const hs = await startHomeserver({ logDir: ctx.logDir, ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}), name: 'workers-homeserver' });
    try {
      const base = { hs, messages: MESSAGES, concurrency: ctx.concurrency, producer: { kind: 'burst' } as const };
      const one = await runEndToEnd(ctx, { ...base, name: 'workers-one', workers: 1 });
      const two = await runEndToEnd(ctx, { ...base, name: 'workers-two', workers: 2 });
      // Each 429 holds its room for at least `delivery.rateLimitFloor`: 1,000 of them at the 1 s default would hold
      // each of the 10 rooms for 100 s; the least floor the config allows keeps this run about what it measures.
      const limited = await runEndToEnd(ctx, { ...base, name: 'workers-429', workers: 2, rateLimitEvery: 10, delivery: { rateLimitFloor: '100ms' } });
      // Steady load shared by two workers: every room's deliveries alternate between them, so each waits for the other's older one.
      const steady = await runEndToEnd(ctx, { ...base, name: 'workers-steady', workers: 2, warmupMessages: 2000, producer: { kind: 'open', ratePerSecond: 1000 } });
      const l = limited.homeserver;
      const rows: Array<[string, string]> = [];
      for (const [label, r] of [['1 worker', one], ['2 workers', two], ['2 workers, 429 every 10th send', limited]] as const) {
        const rss = r.processes.filter((p) => p.name.includes('-worker')).map((p) => fmt.mb(p.peakRssMb)).join(' + ');
        const perDelivery = Math.round((cpuOf(r, '-worker') / r.messages) * 1e6);
        rows.push([label, `${fmt.rate(r.ratePerSecond)} · latency ${fmt.lat(r.latencyMs)} · worker CPU ${perDelivery} µs/delivery · RSS ${rss} · other load ${r.otherLoadCores} cores`]);
      }
      rows.push(['2 workers at 1,000/s (10 s after 2 s of warm-up)', `latency ${fmt.lat(steady.latencyMs)} · worker CPU ${Math.round((cpuOf(steady, '-worker') / steady.messages) * 1e6)} µs/delivery · delivered ${steady.homeserver.events}, ${steady.homeserver.duplicateContent} twice`]);
      rows.push(['  429 run: sends / answered 429', `${l.sends} / ${l.limited}`]);
      rows.push(['  429 run: events / distinct txn ids / repeated txn PUTs', `${l.events} / ${l.distinctTxns} / ${l.dedupeHits}`]);
      rows.push(['  429 run: messages delivered twice', String(l.duplicateContent)]);
      const checks: Check[] = [
        check('429 run: every message delivered', l.events, '>=', MESSAGES, 'events'),
        check('429 run: no message delivered twice', l.duplicateContent + (l.events - l.distinctTxns), '<=', 0, 'duplicates'),
        check('2 workers: worker peak RSS ≤ 100 MB', Math.max(...two.processes.filter((p) => p.name.includes('-worker')).map((p) => p.peakRssMb)), '<=', 100, 'MB'),
      ];
      return {
        rows,
        figures: { messages: MESSAGES, oneWorker: one, twoWorkers: two, twoWorkersRateLimited: limited, twoWorkersSteady: steady, scaling: round(two.ratePerSecond / one.ratePerSecond, 2) },
        checks,
      };
    } finally {
      await hs.stop();
    }
  },
};
