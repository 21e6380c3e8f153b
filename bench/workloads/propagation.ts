/**
 * 4. Mapping propagation: 20 revisions of the mapping, each pointing group
 * #p at a new room; probes to #p are XADDed every 2 ms; the figure is the
 * time from the write to the first probe routed to the new room (by the ms
 * in its deliver-stream id: Redis's clock when the hub's script ran). With
 * the file source (the embedded default), then with CouchDB (pouchdb-server,
 * as the tests run it); then 35 revisions of a mapping of 10,000 groups × 10
 * targets, more than the 30 a hub keeps for the console's history, so that
 * it trims them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { type BenchContext, dropPrefix, groupsMapping, hubReady, startHub, writeMapping } from '../lib/context.ts';
import type { Child } from '../lib/proc.ts';
import { memoryOf } from '../lib/proc-stats.ts';
import { idMs, round, summarize } from '../lib/stats.ts';
import { type Workload, check, fmt } from '../lib/workload.ts';
import { roundSummary } from '../lib/e2e.ts';

const REVISIONS = 20;
const PROBE_EVERY_MS = 2;
/** More than the 30 revisions a hub keeps for the console's history (core/mapping/revisions.ts): the last ones trim it. */
const BIG_REVISIONS = 35;

const mappingFor = (revision: number) => ({
  '#p': { matrix: [`!rev${revision}:bench.local`] },
  '#other': { matrix: ['!other:bench.local'] },
});

/**
 * Writes `revisions` revisions with `write`, measures each from the write to the first delivery to its room.
 * `write` resolves to when the revision was written (ms): building and serializing it is the bench's work, not the hub's.
 */
async function measure(redis: Redis, prefix: string, hub: Child, write: (revision: number) => Promise<number>, revisions = REVISIONS): Promise<number[]> {
  const stream = `${prefix}:deliver:matrix`;
  const watcher = redis.duplicate();
  const producer = redis.duplicate();
  let probing = true;
  const probes = (async () => {
    while (probing) {
      void producer.xadd(`${prefix}:in`, '*', 'to', '#p', 'body', 'probe').catch(() => {});
      await sleep(PROBE_EVERY_MS);
    }
  })();
  const latencies: number[] = [];
  try {
    let cursor = '$';
    for (let revision = 1; revision <= revisions; revision += 1) {
      const room = `!rev${revision}:bench.local`;
      await sleep(100 + Math.random() * 100);
      const writtenAt = await write(revision);
      let seenAt: number | undefined;
      const deadline = writtenAt + 10_000;
      while (seenAt === undefined) {
        if (Date.now() > deadline) throw new Error(`revision ${revision} was not in force 10 s after it was written:\n${hub.tail()}`);
        const reply = (await watcher.xread('COUNT', 1000, 'BLOCK', 200, 'STREAMS', stream, cursor)) as [string, [string, string[]][]][] | null;
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          cursor = id;
          const target = fields[fields.indexOf('target') + 1];
          if (target === room && seenAt === undefined) seenAt = idMs(id);
        }
      }
      latencies.push(seenAt - writtenAt);
      // Keep the stream short: what the next revision looks for comes after `cursor`.
      await redis.xtrim(stream, 'MINID', cursor);
    }
  } finally {
    probing = false;
    await probes;
    watcher.disconnect();
    producer.disconnect();
  }
  return latencies;
}

/** `revisions` revisions of the mapping file, `mappingOf(revision)` each, through a hub of its own. */
async function viaFile(ctx: BenchContext, name: string, mappingOf: (revision: number) => Record<string, unknown>, revisions: number) {
  const prefix = ctx.prefix(name);
  const mappingFile = `${ctx.tempDir(name)}/mapping.json`;
  writeMapping(mappingFile, mappingOf(0));
  let hub: Child | undefined;
  try {
    hub = await startHub(ctx, { prefix, mappingFile, name: `${name}-hub`, wait: false });
    await hubReady(ctx, prefix, hub);
    const all = await measure(ctx.redis, prefix, hub, async (revision) => writeMapping(mappingFile, mappingOf(revision)), revisions);
    const { latencyMs, row } = latencyOf(all);
    return { row, figures: { latencyMs, all, hubPeakRssMb: round(memoryOf(hub.pid)?.hwmMb ?? Number.NaN) } };
  } finally {
    await hub?.stop();
    await dropPrefix(ctx.redis, prefix);
  }
}

/** The summary of `latencies` and its row. */
function latencyOf(latencies: number[]) {
  const latencyMs = roundSummary(summarize(latencies));
  return { latencyMs, row: `p50 ${fmt.ms(latencyMs.p50)} · max ${fmt.ms(latencyMs.max)} (min ${fmt.ms(Math.min(...latencies))})` };
}

export const propagation: Workload = {
  name: 'propagation',
  title: `4. Mapping propagation (${REVISIONS} revisions, write → first message routed by it)`,
  async run(ctx: BenchContext) {
    const rows: Array<[string, string]> = [];
    const figures: Record<string, unknown> = { revisions: REVISIONS, probeEveryMs: PROBE_EVERY_MS };
    const checks = [];

    // File source.
    {
      const r = await viaFile(ctx, 'propagation', mappingFor, REVISIONS);
      rows.push(['file source: write → routed', r.row]);
      rows.push(['file source: hub peak RSS', fmt.mb(r.figures.hubPeakRssMb)]);
      figures.file = r.figures;
      checks.push(check('mapping propagation p50 ≤ 100 ms (file)', r.figures.latencyMs.p50, '<=', 100, 'ms'));
    }

    // CouchDB source.
    {
      const prefix = ctx.prefix('propagation-couch');
      // pouchdb-server, started as the tests start it (loaded only for this phase).
      const { startCouch } = await import('../../test/servers/couchdb.ts');
      const couch = await startCouch();
      let hub: Child | undefined;
      try {
        const db = `${couch.url}/notifications`;
        const doc = `${db}/ccs.notifications`;
        const put = async (body: unknown, url: string) => {
          const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
          const reply = (await res.json()) as { rev?: string };
          if (!res.ok) throw new Error(`CouchDB PUT ${url}: HTTP ${res.status} ${JSON.stringify(reply)}`);
          return reply.rev;
        };
        await put({}, db);
        let rev = await put({ mapping: mappingFor(0) }, doc);
        hub = await startHub(ctx, { prefix, mappingFile: '/nonexistent', name: 'propagation-couch-hub', env: { COUCHDB_URL: couch.url }, wait: false });
        await hubReady(ctx, prefix, hub);
        const latencies = await measure(ctx.redis, prefix, hub, async (revision) => {
          const at = Date.now();
          rev = await put({ _rev: rev, mapping: mappingFor(revision) }, doc);
          return at;
        });
        const { latencyMs, row } = latencyOf(latencies);
        rows.push(['CouchDB source: write → routed', row]);
        figures.couchdb = { latencyMs, all: latencies, server: 'pouchdb-server (test/servers/couchdb.ts)' };
        checks.push(check('mapping propagation p50 ≤ 100 ms (CouchDB)', latencyMs.p50, '<=', 100, 'ms'));
      } finally {
        await hub?.stop();
        await couch.stop();
        await dropPrefix(ctx.redis, prefix);
      }
    }

    // File source, a big mapping, its history trimmed.
    {
      const big = groupsMapping(10_000, 10);
      const r = await viaFile(ctx, 'propagation-big', (revision) => ({ ...big, ...mappingFor(revision) }), BIG_REVISIONS);
      rows.push([`10,000 groups × 10, ${BIG_REVISIONS} revisions: write → routed`, r.row]);
      rows.push(['  hub peak RSS (30 revisions kept, the rest trimmed)', fmt.mb(r.figures.hubPeakRssMb)]);
      figures.bigFile = { groups: 10_000, targets: 10, revisions: BIG_REVISIONS, ...r.figures };
    }
    return { rows, figures, checks };
  },
};
