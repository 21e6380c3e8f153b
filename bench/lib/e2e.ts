/**
 * One end-to-end run: producer (this process) → `<prefix>:in` → hub (child)
 * → `<prefix>:deliver:matrix` → matrix worker(s) (children) → the bench
 * homeserver (child). Used by the delivery, latency and workers workloads.
 */
import { writeFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { type BenchContext, REDIS_URL, ROOT, dropPrefix, groupsMapping, hubReady, startHub, startMatrixWorker, workerReady, writeMapping } from './context.ts';
import type { Homeserver } from './homeserver-client.ts';
import type { HomeserverStats } from '../homeserver.ts';
import { type Child, spawnNode, waitFor } from './proc.ts';
import { RssSampler, cpuSecondsOf, machineBusySeconds, memoryOf, parseRedisCpu } from './proc-stats.ts';
import { type Summary, idMs, round, summarize, wallNow } from './stats.ts';
import { fromPairs } from '../../core/redis/fields.ts';

export type Producer = { kind: 'burst' } | { kind: 'open'; ratePerSecond: number };

export interface E2EOptions {
  name: string;
  hs: Homeserver;
  messages: number;
  groups?: number;
  workers?: number;
  concurrency: number;
  rateLimitEvery?: number;
  /** `delivery.*` of the workers' config (durations as strings or ms). */
  delivery?: Record<string, string | number>;
  producer: Producer;
  /** Per-stage timings from the outcome stream (costs a read of it afterwards). */
  stages?: boolean;
  /**
   * Hub and worker replaced by the round trips they make with no logic around them (lib/skeleton.ts): the floor;
   * `guarded`, with each room's messages in order and rendered as the matrix plugin renders them.
   */
  skeleton?: 'bare' | 'guarded';
  /** Messages sent first, the same way, and left out of the figures (JIT, connections, caches warm up). */
  warmupMessages?: number;
  timeoutMs?: number;
}

export interface ProcessFigures {
  name: string;
  pid: number;
  peakRssMb: number;
  /** Peak anonymous RSS: what the process holds of its own (see proc-stats.ts). */
  peakAnonMb: number;
  cpuSeconds: number;
}

export interface E2EResult {
  messages: number;
  /** First XADD to last arrival at the homeserver. */
  seconds: number;
  ratePerSecond: number;
  latencyMs: Summary;
  processes: ProcessFigures[];
  redisCpuSeconds: number;
  /** Cores kept busy, on average over the run, by processes outside the bench (other work on the machine). */
  otherLoadCores: number;
  /** CPU per message, µs: each process of the bench and Redis. */
  cpuPerMessageUs: Record<string, number>;
  homeserver: Pick<HomeserverStats, 'events' | 'distinctTxns' | 'dedupeHits' | 'limited' | 'sends' | 'syncs' | 'stateReads' | 'duplicateContent'>;
  /** The warm-up messages' latency (not in latencyMs). */
  warmupLatencyMs?: Summary;
  /** Open loop only: how late the producer sent, against its schedule. */
  producerLagMs?: Summary;
  stagesMs?: Record<string, Summary>;
  /** With stages: the 100 ms windows (by send time, seconds from the first send) with the slowest messages. */
  slowWindows?: Array<{ atS: number; maxMs: number; over10ms: number }>;
  /** Time to start the hub and worker processes until they consume. */
  startupMs: number;
}

export const BODY = (i: number) => `<p>Build <b>#${i}</b> of <i>api</i> finished: <a href="https://ci.example.org/b/${i}">details</a></p>`;

export function messageFields(i: number, groups: number, sentAt: number): string[] {
  return ['to', `#g${i % groups}`, 'subject', `bench seq=${i} t=${sentAt.toFixed(3)}`, 'body', BODY(i)];
}

/** The Matrix content the plugin makes of message `i` (for the raw HTTP ceiling). */
export function matrixContent(i: number, sentAt: number): string {
  const subject = `bench seq=${i} t=${sentAt.toFixed(3)}`;
  return JSON.stringify({
    msgtype: 'm.text',
    body: `${subject}\n\nBuild #${i} of api finished: details [https://ci.example.org/b/${i}]`,
    format: 'org.matrix.custom.html',
    formatted_body: `<b>${subject}</b><br>${BODY(i)}`,
  });
}

export async function runEndToEnd(ctx: BenchContext, options: E2EOptions): Promise<E2EResult> {
  const { hs } = options;
  const warmup = options.warmupMessages ?? 0;
  /** Messages produced in all; figures are over those after the warm-up. */
  const n = warmup + options.messages;
  const groups = options.groups ?? 10;
  const prefix = ctx.prefix(options.name);
  const dir = ctx.tempDir(options.name);
  const mappingFile = `${dir}/mapping.json`;
  writeMapping(mappingFile, groupsMapping(groups));
  const workerEnv: Record<string, string> = {};
  if (options.delivery) {
    // HUB_CONFIG is loaded with import(): plain data.
    writeFileSync(`${dir}/hub.config.mjs`, `export default ${JSON.stringify({ delivery: options.delivery })};\n`);
    workerEnv.HUB_CONFIG = `${dir}/hub.config.mjs`;
  }
  await hs.reset({ rateLimitEvery: options.rateLimitEvery ?? 0 });
  const children: Child[] = [];
  try {
    const t0 = Date.now();
    // Registered before they are waited for, so that `finally` stops them before it deletes their keys.
    if (options.skeleton) {
      children.push(startSkeleton(ctx, 'hub', prefix, `${options.name}-hub`), startSkeleton(ctx, 'worker', prefix, `${options.name}-worker1`, hs.url, options.concurrency, options.skeleton));
      await Promise.all(children.map((c) => skeletonReady(c)));
    } else {
      const hub = await startHub(ctx, { prefix, mappingFile, name: `${options.name}-hub`, wait: false });
      children.push(hub);
      for (let w = 1; w <= (options.workers ?? 1); w += 1) {
        children.push(await startMatrixWorker(ctx, { prefix, mappingFile, homeserver: hs.url, concurrency: options.concurrency, name: `${options.name}-worker${w}`, wait: false, env: workerEnv }));
      }
      await Promise.all([hubReady(ctx, prefix, hub), ...children.slice(1).map((c) => workerReady(ctx, prefix, c))]);
    }
    const startupMs = Date.now() - t0;
    const tracked = [...children, hs.child];
    const sampler = new RssSampler(() => tracked.map((c) => c.pid));
    const cpuBefore = tracked.map((c) => cpuSecondsOf(c.pid));
    const redisCpuBefore = parseRedisCpu(await ctx.redis.info('cpu'));
    const machineBefore = machineBusySeconds();
    const selfBefore = process.cpuUsage();
    const wallBefore = performance.now();

    const reached = hs.expect(n, options.timeoutMs ?? 120_000);
    const sentAt = new Float64Array(n);
    const entryIds: string[] = new Array(n);
    const produced = options.producer.kind === 'burst'
      ? produceBurst(ctx.redis, `${prefix}:in`, n, groups, sentAt, entryIds)
      : produceOpenLoop(ctx.redis, `${prefix}:in`, n, groups, options.producer.ratePerSecond, sentAt, entryIds);
    const [lastArrival, producerLag] = await Promise.all([reached, produced]);
    const firstSend = sentAt[warmup]!;

    // Everything settled: a delivery's stream entry is deleted when its outcome is written.
    await waitFor('the deliveries to be settled', async () => (await ctx.redis.xlen(`${prefix}:deliver:matrix`)) === 0, { timeoutMs: 30_000, watch: children });
    const cpu = tracked.map((c, i) => cpuSecondsOf(c.pid) - cpuBefore[i]!);
    const redisCpuSeconds = parseRedisCpu(await ctx.redis.info('cpu')) - redisCpuBefore;
    const self = process.cpuUsage(selfBefore);
    const ours = cpu.reduce((a, b) => a + b, 0) + redisCpuSeconds + (self.user + self.system) / 1e6;
    const otherLoadCores = (machineBusySeconds() - machineBefore - ours) / ((performance.now() - wallBefore) / 1000);
    sampler.stop();
    const processes = tracked.map((c, i): ProcessFigures => ({
      name: c.name,
      pid: c.pid,
      peakRssMb: round(Math.max(sampler.peaks.get(c.pid) ?? 0, memoryOf(c.pid)?.hwmMb ?? 0)),
      peakAnonMb: round(sampler.anonPeaks.get(c.pid) ?? 0),
      cpuSeconds: round(cpu[i]!, 2),
    }));

    const stats = await hs.stats(true);
    const latencies: number[] = [];
    const warmupLatencies: number[] = [];
    for (const [seq, at] of stats.arrivals ?? []) {
      if (seq < 0 || seq >= n) continue;
      (seq < warmup ? warmupLatencies : latencies).push(at - sentAt[seq]!);
    }
    const seconds = (lastArrival - firstSend) / 1000;
    const result: E2EResult = {
      messages: options.messages,
      seconds: round(seconds, 3),
      ratePerSecond: round(options.messages / seconds, 0),
      latencyMs: roundSummary(summarize(latencies)),
      ...(warmup ? { warmupLatencyMs: roundSummary(summarize(warmupLatencies)) } : {}),
      processes,
      redisCpuSeconds: round(redisCpuSeconds, 2),
      otherLoadCores: round(Math.max(0, otherLoadCores), 2),
      cpuPerMessageUs: {
        ...Object.fromEntries(processes.map((p) => [p.name.startsWith(`${options.name}-`) ? p.name.slice(options.name.length + 1) : p.name.split('-').pop()!, round((p.cpuSeconds / n) * 1e6, 0)])),
        redis: round((redisCpuSeconds / n) * 1e6, 0),
      },
      homeserver: {
        events: stats.events,
        distinctTxns: stats.distinctTxns,
        dedupeHits: stats.dedupeHits,
        limited: stats.limited,
        sends: stats.sends,
        syncs: stats.syncs,
        stateReads: stats.stateReads,
        duplicateContent: stats.duplicateContent,
      },
      startupMs,
      ...(producerLag ? { producerLagMs: roundSummary(producerLag) } : {}),
    };
    if (options.stages && !options.skeleton && stats.arrivals) {
      result.stagesMs = await stageTimings(ctx.redis, prefix, sentAt, entryIds, stats.arrivals, warmup);
      result.slowWindows = slowWindows(sentAt, stats.arrivals, warmup);
    }
    return result;
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await dropPrefix(ctx.redis, prefix);
  }
}

function startSkeleton(ctx: BenchContext, role: 'hub' | 'worker', prefix: string, name: string, homeserver = '', concurrency = 10, mode: E2EOptions['skeleton'] = 'bare'): Child {
  return spawnNode(name, {
    args: ['bench/lib/skeleton.ts', role, REDIS_URL, prefix, homeserver, String(concurrency), mode],
    cwd: ROOT,
    env: ctx.nodeEnv,
    logDir: ctx.logDir,
    nodeArgs: ctx.nodeArgs,
    ipc: true,
    ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}),
  });
}

async function skeletonReady(child: Child): Promise<void> {
  let ready = false;
  child.proc.once('message', () => (ready = true));
  await waitFor(`${child.name} to consume`, () => ready, { watch: [child], timeoutMs: 60_000 });
}

async function produceBurst(redis: Redis, stream: string, n: number, groups: number, sentAt: Float64Array, entryIds: string[]): Promise<undefined> {
  const CHUNK = 1000;
  for (let start = 0; start < n; start += CHUNK) {
    const pipeline = redis.pipeline();
    for (let i = start; i < Math.min(n, start + CHUNK); i += 1) {
      sentAt[i] = wallNow();
      pipeline.xadd(stream, '*', ...messageFields(i, groups, sentAt[i]!));
    }
    const results = (await pipeline.exec()) ?? [];
    results.forEach(([err, id], k) => {
      if (err) throw err;
      entryIds[start + k] = id as string;
    });
  }
  return undefined;
}

/** An open loop: message i is sent at start + i/rate whatever happens downstream. */
async function produceOpenLoop(redis: Redis, stream: string, n: number, groups: number, rate: number, sentAt: Float64Array, entryIds: string[]): Promise<Summary> {
  const interval = 1000 / rate;
  const start = wallNow() + 5;
  const lag = new Float64Array(n);
  const pending: Promise<void>[] = [];
  let i = 0;
  while (i < n) {
    const now = wallNow();
    while (i < n && start + i * interval <= now) {
      const k = i;
      sentAt[k] = wallNow();
      lag[k] = sentAt[k]! - (start + k * interval);
      pending.push(redis.xadd(stream, '*', ...messageFields(k, groups, sentAt[k]!)).then((id) => void (entryIds[k] = id as string)));
      i += 1;
    }
    if (i < n) await sleep(Math.max(0, start + i * interval - wallNow()));
  }
  await Promise.all(pending);
  return summarize(lag);
}

/**
 * Where the time goes, per message, from the outcome stream: `routed`
 * events (the hub's script ran) and `sent` events (the worker's settle ran)
 * carry Redis's clock in their ids (ms), the homeserver its arrivals.
 */
async function stageTimings(redis: Redis, prefix: string, sentAt: Float64Array, entryIds: string[], arrivals: Array<[number, number]>, warmup: number): Promise<Record<string, Summary>> {
  const seqOf = new Map(entryIds.map((id, seq) => [id, seq]));
  const n = entryIds.length;
  const routed = new Float64Array(n).fill(Number.NaN);
  const settled = new Float64Array(n).fill(Number.NaN);
  const arrived = new Float64Array(n).fill(Number.NaN);
  for (const [seq, at] of arrivals) if (seq >= 0 && seq < n && Number.isNaN(arrived[seq]!)) arrived[seq] = at;
  let cursor = '-';
  for (;;) {
    const batch = (await redis.xrange(`${prefix}:events`, cursor, '+', 'COUNT', 5000)) as Array<[string, string[]]>;
    for (const [id, flat] of batch) {
      const f = fromPairs(flat);
      const seq = seqOf.get(f.entry ?? '');
      if (seq === undefined) continue;
      // Stream ids have whole milliseconds (floored): +0.5 ms centres the error.
      if (f.type === 'routed') routed[seq] = idMs(id) + 0.5;
      else if (f.type === 'sent') settled[seq] = idMs(id) + 0.5;
    }
    if (batch.length < 5000) break;
    cursor = `(${batch.at(-1)![0]}`;
  }
  const toRouted: number[] = [];
  const toArrival: number[] = [];
  const toSettled: number[] = [];
  for (let i = warmup; i < n; i += 1) {
    if (!Number.isNaN(routed[i]!)) toRouted.push(routed[i]! - sentAt[i]!);
    if (!Number.isNaN(routed[i]!) && !Number.isNaN(arrived[i]!)) toArrival.push(arrived[i]! - routed[i]!);
    if (!Number.isNaN(settled[i]!) && !Number.isNaN(arrived[i]!)) toSettled.push(settled[i]! - arrived[i]!);
  }
  return {
    'xadd→routed': roundSummary(summarize(toRouted)),
    'routed→arrival': roundSummary(summarize(toArrival)),
    'arrival→settled': roundSummary(summarize(toSettled)),
  };
}

function slowWindows(sentAt: Float64Array, arrivals: Array<[number, number]>, warmup: number): Array<{ atS: number; maxMs: number; over10ms: number }> {
  const windows = new Map<number, { maxMs: number; over10ms: number }>();
  for (const [seq, at] of arrivals) {
    if (seq < warmup || seq >= sentAt.length) continue;
    const latency = at - sentAt[seq]!;
    const key = Math.floor((sentAt[seq]! - sentAt[warmup]!) / 100);
    const w = windows.get(key) ?? { maxMs: 0, over10ms: 0 };
    w.maxMs = Math.max(w.maxMs, latency);
    if (latency > 10) w.over10ms += 1;
    windows.set(key, w);
  }
  return [...windows]
    .sort((a, b) => b[1].maxMs - a[1].maxMs)
    .slice(0, 5)
    .map(([key, w]) => ({ atS: key / 10, maxMs: round(w.maxMs, 1), over10ms: w.over10ms }));
}

export function roundSummary(s: Summary): Summary {
  return { n: s.n, p50: round(s.p50, 2), p90: round(s.p90, 2), p99: round(s.p99, 2), max: round(s.max, 2), mean: round(s.mean, 2) };
}
