/** Routing measurements shared by the routing and width workloads: preload, let a hub (or the raw loop) fan out, time it by Redis's clock. */
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { type BenchContext, REDIS_URL, hubReady, startHub } from './context.ts';
import { type Child, spawnNode, waitFor } from './proc.ts';
import { RssSampler, commandStatsSince, cpuSecondsOf, memoryOf, parseCommandStats, parseRedisCpu } from './proc-stats.ts';
import { idMs, round } from './stats.ts';

/** XADD `count` entries, pipelined in chunks. */
export async function preload(redis: Redis, stream: string, count: number, fields: (i: number) => string[]): Promise<number> {
  const t0 = performance.now();
  const CHUNK = 5000;
  for (let start = 0; start < count; start += CHUNK) {
    const pipeline = redis.pipeline();
    for (let i = start; i < Math.min(count, start + CHUNK); i += 1) pipeline.xadd(stream, '*', ...fields(i));
    const results = (await pipeline.exec()) ?? [];
    for (const [err] of results) if (err) throw err;
  }
  return performance.now() - t0;
}

/** First to last entry of a stream, by the ms in their ids (Redis's clock when it added them). */
export async function streamSpanMs(redis: Redis, stream: string): Promise<number> {
  const [first] = (await redis.xrange(stream, '-', '+', 'COUNT', 1)) as Array<[string, string[]]>;
  const [last] = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
  if (!first || !last) return Number.NaN;
  return Math.max(1, idMs(last[0]) - idMs(first[0]));
}

export interface RoutingFigures {
  messages: number;
  deliveries: number;
  seconds: number;
  messagesPerSecond: number;
  deliveriesPerSecond: number;
  peakRssMb: number;
  /** Peak anonymous RSS (see proc-stats.ts). */
  peakAnonMb: number;
  cpuSeconds: number;
  redisCpuSeconds: number;
  /** What Redis ran while the hub routed (the bench's own polling included, a few calls): calls and CPU µs per command. */
  redisCommands: Record<string, { calls: number; usec: number }>;
  /** Spawn until consuming. */
  startupMs: number;
}

/**
 * Start a hub on `prefix` (entries already waiting in `<prefix>:in`) and wait
 * until `deliveries` entries are in `<prefix>:deliver:matrix`.
 */
export async function routeWithHub(ctx: BenchContext, options: { prefix: string; mappingFile: string; messages: number; deliveries: number; name: string; timeoutMs?: number }): Promise<RoutingFigures & { child: Child }> {
  const out = `${options.prefix}:deliver:matrix`;
  const redisCpuBefore = parseRedisCpu(await ctx.redis.info('cpu'));
  const commandsBefore = parseCommandStats(await ctx.redis.info('commandstats'));
  const t0 = performance.now();
  const hub = await startHub(ctx, { prefix: options.prefix, mappingFile: options.mappingFile, name: options.name, wait: false });
  let sampler: RssSampler | undefined;
  try {
    await hubReady(ctx, options.prefix, hub);
    const startupMs = performance.now() - t0;
    sampler = new RssSampler(() => [hub.pid], 50);
    await waitFor(`${options.deliveries} deliveries`, async () => (await ctx.redis.xlen(out)) >= options.deliveries, { timeoutMs: options.timeoutMs ?? 120_000, everyMs: 50, watch: [hub] });
    const cpuSeconds = cpuSecondsOf(hub.pid);
    const redisCpuSeconds = parseRedisCpu(await ctx.redis.info('cpu')) - redisCpuBefore;
    const redisCommands = Object.fromEntries(commandStatsSince(commandsBefore, parseCommandStats(await ctx.redis.info('commandstats'))));
    sampler.stop();
    const peakRssMb = Math.max(sampler.peaks.get(hub.pid) ?? 0, memoryOf(hub.pid)?.hwmMb ?? 0);
    const seconds = (await streamSpanMs(ctx.redis, out)) / 1000;
    return {
      child: hub,
      messages: options.messages,
      deliveries: options.deliveries,
      seconds: round(seconds, 3),
      messagesPerSecond: round(options.messages / seconds, 0),
      deliveriesPerSecond: round(options.deliveries / seconds, 0),
      peakRssMb: round(peakRssMb),
      peakAnonMb: round(sampler.anonPeaks.get(hub.pid) ?? 0),
      // Includes start-up (module loading, mapping validation): see startupMs.
      cpuSeconds: round(cpuSeconds, 2),
      redisCpuSeconds: round(redisCpuSeconds, 2),
      redisCommands,
      startupMs: Math.round(startupMs),
    };
  } catch (err) {
    sampler?.stop();
    // Stopped before the caller deletes the prefix, so that it cannot write keys again.
    await hub.stop();
    throw err;
  }
}

/** The raw loop (bench/lib/raw-router.ts) as a child, from `input` to `output`. */
export async function routeRaw(ctx: BenchContext, options: { input: string; output: string; messages: number; batch?: number }): Promise<{ seconds: number; messagesPerSecond: number; cpuSeconds: number; redisCpuSeconds: number }> {
  const redisCpuBefore = parseRedisCpu(await ctx.redis.info('cpu'));
  const child = spawnNode('raw-router', {
    args: [fileURLToPath(new URL('./raw-router.ts', import.meta.url)), REDIS_URL, options.input, options.output, String(options.messages), String(options.batch ?? 200)],
    logDir: ctx.logDir,
    ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}),
  });
  let cpuSeconds = 0;
  const cpuTimer = setInterval(() => (cpuSeconds = Math.max(cpuSeconds, cpuSecondsOf(child.pid) || 0)), 20);
  try {
    const code = await Promise.race([child.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('raw router: timed out')), 120_000).unref())]);
    if (code !== 0) throw new Error(`raw router exited with ${code}:\n${child.tail()}`);
  } finally {
    clearInterval(cpuTimer);
    await child.stop();
  }
  const seconds = (await streamSpanMs(ctx.redis, options.output)) / 1000;
  return {
    seconds: round(seconds, 3),
    messagesPerSecond: round(options.messages / seconds, 0),
    cpuSeconds: round(cpuSeconds, 2),
    redisCpuSeconds: round(parseRedisCpu(await ctx.redis.info('cpu')) - redisCpuBefore, 2),
  };
}
