/**
 * 1. Delivery, end to end: 10,000 entries, entry i to #g(i mod 10), each group
 * one Matrix room; hub and one matrix worker as child processes, the bench
 * homeserver in a third. Against it, the ceiling: the same 10,000 PUTs from an
 * undici Pool at the worker's concurrency straight to the same homeserver.
 * Then the worker's floor: the same burst through the guarded skeleton.
 */
import { cpus } from 'node:os';
import type { BenchContext } from '../lib/context.ts';
import { matrixContent, runEndToEnd } from '../lib/e2e.ts';
import { memoryFloors, rssFloor } from '../lib/bare-node.ts';
import { startHomeserver } from '../lib/homeserver-client.ts';
import { rawHttpSends } from '../lib/raw-http.ts';
import { round } from '../lib/stats.ts';
import { workerFloor } from '../lib/worker-floor.ts';
import { type Workload, check, fmt } from '../lib/workload.ts';

const MESSAGES = 10_000;
const ROOMS = 10;

export const delivery: Workload = {
  name: 'delivery',
  title: `1. Delivery end to end (${MESSAGES.toLocaleString('en-US')} messages, ${ROOMS} rooms)`,
  async run(ctx: BenchContext) {
    const hs = await startHomeserver({ logDir: ctx.logDir, ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}), name: 'delivery-homeserver' });
    try {
      // Warm the homeserver's JIT, so that neither measurement pays for it.
      await rawHttpSends({ url: hs.url, messages: 2000, rooms: ROOMS, concurrency: ctx.concurrency, content: matrixContent });

      await hs.reset();
      const reached = hs.expect(MESSAGES, 60_000);
      const { startedAt, cpuPerSendUs } = await rawHttpSends({ url: hs.url, messages: MESSAGES, rooms: ROOMS, concurrency: ctx.concurrency, content: matrixContent });
      const ceilingSeconds = ((await reached) - startedAt) / 1000;
      const ceiling = MESSAGES / ceilingSeconds;
      const rawStats = await hs.stats();

      const e2e = await runEndToEnd(ctx, { name: 'delivery', hs, messages: MESSAGES, groups: ROOMS, concurrency: ctx.concurrency, producer: { kind: 'burst' }, stages: true });
      const ratio = e2e.ratePerSecond / ceiling;
      const hub = e2e.processes.find((p) => p.name.endsWith('-hub'))!;
      const memory = await memoryFloors(ctx);
      const worker = e2e.processes.find((p) => p.name.endsWith('-worker1'))!;
      const homeserver = e2e.processes.find((p) => p.name.endsWith('homeserver'))!;
      const lost = MESSAGES - e2e.homeserver.events;
      // What the machine could deliver if the worker cost no more than the raw client does per PUT, the hub,
      // Redis and the homeserver what they cost in this run: no worker can do better on these cores.
      const others = ['hub', 'homeserver', 'redis'].reduce((sum, name) => sum + (e2e.cpuPerMessageUs[name] ?? 0), 0);
      const bound = (cpus().length * 1e6) / (others + cpuPerSendUs);
      const floor = await workerFloor(ctx);
      // One round trip: the tick's call, which settles a delivery and asks the next one's turn (core/runtime/tick-call.ts).
      const workerFloorUs = cpuPerSendUs + floor.renderUs + floor.roundTripUs;
      const workerUs = e2e.cpuPerMessageUs['worker1'] ?? Number.NaN;
      // The same burst through the guarded skeleton (lib/skeleton.ts): every round trip a delivery makes, each room in
      // order, rendered as the plugin renders, the fail-closed /sync shared as the plugin shares it, and no other logic.
      const guarded = await runEndToEnd(ctx, { name: 'delivery-guarded', hs, messages: MESSAGES, groups: ROOMS, concurrency: ctx.concurrency, producer: { kind: 'burst' }, skeleton: 'guarded' });
      const guardedUs = guarded.cpuPerMessageUs['worker1'] ?? Number.NaN;
      // The same bound with the worker at its floor: what it cannot give up (the PUT, rendering, order, the /sync).
      const boundAtFloor = (cpus().length * 1e6) / (others + guardedUs);
      return {
        rows: [
          ['hub + matrix worker', `${fmt.rate(e2e.ratePerSecond)} (${e2e.seconds.toFixed(2)} s, concurrency ${ctx.concurrency})`],
          ['raw undici Pool ceiling', `${fmt.rate(ceiling)} (${ceilingSeconds.toFixed(2)} s, ${ctx.concurrency} connections)`],
          ['ratio delivery / ceiling', fmt.pct(ratio)],
          ['latency XADD → arrival (burst)', fmt.lat(e2e.latencyMs)],
          ...Object.entries(e2e.stagesMs ?? {}).map(([stage, s]): [string, string] => [`  stage ${stage}`, `p50 ${fmt.ms(s.p50)} · p99 ${fmt.ms(s.p99)}`]),
          ['peak RSS hub / worker', `${fmt.mb(hub.peakRssMb)} / ${fmt.mb(worker.peakRssMb)} (anonymous ${fmt.mb(hub.peakAnonMb)} / ${fmt.mb(worker.peakAnonMb)})`],
          ...memory.rows,
          ['CPU µs/message hub / worker / homeserver / redis', `${e2e.cpuPerMessageUs['hub']} / ${e2e.cpuPerMessageUs['worker1']} / ${e2e.cpuPerMessageUs['homeserver']} / ${e2e.cpuPerMessageUs['redis']}  (CPU s ${hub.cpuSeconds} / ${worker.cpuSeconds} / ${homeserver.cpuSeconds} / ${e2e.redisCpuSeconds})`],
          ['raw client CPU per PUT', `${cpuPerSendUs} µs (undici, in the bench process)`],
          [`  bound: ${cpus().length} cores / (hub + homeserver + redis + raw client)`, `${fmt.rate(bound)} = ${fmt.pct(bound / ceiling)} of the ceiling, with a worker costing no more than the raw client`],
          [`  bound: ${cpus().length} cores / (hub + homeserver + redis + worker at its floor)`, `${fmt.rate(boundAtFloor)} = ${fmt.pct(boundAtFloor / ceiling)} of the ceiling, with a worker costing its floor below (${guardedUs} µs)`],
          ['worker CPU per delivery / raw client per PUT', `${workerUs} / ${cpuPerSendUs} µs = ${(workerUs / cpuPerSendUs).toFixed(1)}×`],
          ['  floor: the guarded skeleton, the same burst', `${guardedUs} µs = ${(guardedUs / cpuPerSendUs).toFixed(1)}× (lib/skeleton.ts: the round trips, order, rendering, the /sync; ${fmt.rate(guarded.ratePerSecond)})`],
          ['    its parts alone: PUT + rendering + 1 Redis round trip', `${cpuPerSendUs} + ${floor.renderUs} + ${floor.roundTripUs} = ${workerFloorUs} µs = ${(workerFloorUs / cpuPerSendUs).toFixed(1)}× (rendering and round trips measured alone, in the bench process)`],
          ['other load on the machine', `${e2e.otherLoadCores} cores busy outside the bench`],
          ['delivered / duplicates', `${e2e.homeserver.events} / ${e2e.homeserver.duplicateContent}${lost ? ` (${lost} missing)` : ''}`],
        ],
        figures: { messages: MESSAGES, rooms: ROOMS, concurrency: ctx.concurrency, endToEnd: e2e, bareNode: memory.hub, bareWorker: memory.worker, ceiling: { ratePerSecond: round(ceiling, 0), seconds: round(ceilingSeconds, 3), events: rawStats.events }, ratio: round(ratio, 3), rawClientCpuPerSendUs: cpuPerSendUs, boundPerSecond: round(bound, 0), boundRatio: round(bound / ceiling, 3), boundAtWorkerFloorPerSecond: round(boundAtFloor, 0), boundAtWorkerFloorRatio: round(boundAtFloor / ceiling, 3), workerFloor: { ...floor, totalUs: workerFloorUs }, guardedFloor: guarded },
        checks: [
          check('delivery ≥ 60 % of the raw HTTP ceiling', round(ratio * 100, 1), '>=', 60, '%', {
            value: round((boundAtFloor / ceiling) * 100, 1),
            what: `what ${cpus().length} cores allow with the worker at its floor (next row) and hub, homeserver and Redis as measured`,
          }),
          check('worker CPU per delivery ≤ 2× the raw client per PUT', round(workerUs / cpuPerSendUs, 1), '<=', 2, '×', {
            value: round(guardedUs / cpuPerSendUs, 1),
            what: `the guarded skeleton in the same burst: the round trips a delivery makes, each room in order, rendered as the plugin renders, the fail-closed /sync shared, no other logic (its parts measured alone, the PUT, the rendering and one Redis round trip: ${(workerFloorUs / cpuPerSendUs).toFixed(1)}×)`,
          }),
          check('hub peak RSS ≤ 100 MB (delivery)', hub.peakRssMb, '<=', 100, 'MB', rssFloor(memory.hub)),
          check('worker peak RSS ≤ 100 MB (delivery)', worker.peakRssMb, '<=', 100, 'MB', rssFloor(memory.worker)),
        ],
      };
    } finally {
      await hs.stop();
    }
  },
};
