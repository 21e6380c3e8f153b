/**
 * The HTTP ingress. First an open loop at 1,000 requests/s through hub,
 * matrix worker and homeserver: POST → 202 and POST → arrival in the room,
 * spread over ten groups of one room each as in the latency workload (one
 * room takes its messages one after another, in order: fewer than 1,000 a
 * second on this machine, so into one room the figure would be that room's
 * queue, not the ingress).
 * Then throughput: POST /v1/groups/g<i mod 10> from 16 keep-alive clients (an undici
 * Pool) to the hub process, which also routes what it accepts; against it, a
 * bare XADD loop with the same 16 in flight on the same Redis.
 */
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { type BenchContext, REDIS_URL, dropPrefix, groupsMapping, startHub, startMatrixWorker, writeMapping } from '../lib/context.ts';
import { roundSummary } from '../lib/e2e.ts';
import { startHomeserver } from '../lib/homeserver-client.ts';
import { freePort } from '../../test/servers/free-port.ts';
import { cpuSecondsOf, parseRedisCpu } from '../lib/proc-stats.ts';
import { type Child, spawnNode, waitFor } from '../lib/proc.ts';
import { round, summarize, wallNow } from '../lib/stats.ts';
import { type Workload, check, fmt } from '../lib/workload.ts';

const CLIENTS = 16;
const GROUPS = 10;
const REQUESTS = 20_000;
const RATE = 1000;
const SECONDS = 10;
const WARMUP_SECONDS = 2;
const TOKEN = 'bench-ingress-token-0123456789abcdef';
const BODY = (i: number) => `<p>Build <b>#${i}</b> of <i>api</i> finished: <a href="https://ci.example.org/b/${i}">details</a></p>`;

export const ingress: Workload = {
  name: 'ingress',
  title: `HTTP ingress (${REQUESTS.toLocaleString('en-US')} POSTs from ${CLIENTS} keep-alive clients; open loop ${RATE.toLocaleString('en-US')} req/s for ${SECONDS} s)`,
  async run(ctx: BenchContext) {
    const prefix = ctx.prefix('ingress');
    const mappingFile = `${ctx.tempDir('ingress')}/mapping.json`;
    writeMapping(mappingFile, groupsMapping(GROUPS));
    const port = await freePort();
    const hub = await startHub(ctx, {
      prefix,
      mappingFile,
      name: 'ingress-hub',
      env: { HUB_INGRESS_TOKENS: JSON.stringify([{ name: 'bench', token: TOKEN, groups: ['*'] }]), HUB_INGRESS_PORT: String(port), HUB_INGRESS_HOST: '127.0.0.1' },
    });
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CLIENTS, pipelining: 1 });
    const post = poster(pool);
    let worker: Child | undefined;
    const hs = await startHomeserver({ logDir: ctx.logDir, ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}), name: 'ingress-homeserver' });
    try {
      await waitFor('the ingress to answer', async () => (await post(-1, 0).catch(() => 0)) === 202, { watch: [hub], timeoutMs: 30_000 });

      // Latency first, with a matrix worker delivering into the homeserver: an open loop at RATE/s,
      // POST → 202 and POST → arrival in the room, after a warm-up left out of the figures.
      worker = await startMatrixWorker(ctx, { prefix, mappingFile, homeserver: hs.url, concurrency: ctx.concurrency, name: 'ingress-worker' });
      await hs.expect(1, 30_000);
      await hs.reset();
      const total = RATE * (SECONDS + WARMUP_SECONDS);
      const warmup = RATE * WARMUP_SECONDS;
      const sentAt = new Float64Array(total);
      const answered: number[] = [];
      const lags: number[] = [];
      let refused = 0;
      const reached = hs.expect(total, 300_000);
      const start = wallNow() + 50;
      await new Promise<void>((resolve) => {
        let sent = 0;
        let done = 0;
        const tick = () => {
          const now = wallNow();
          while (sent < total && start + (sent * 1000) / RATE <= now) {
            const i = sent++;
            const at = wallNow();
            sentAt[i] = at;
            void post(i, at)
              .then(
                (status) => {
                  if (status !== 202) refused += 1;
                  if (i >= warmup) {
                    answered.push(wallNow() - at);
                    lags.push(at - (start + (i * 1000) / RATE));
                  }
                },
                () => (refused += 1),
              )
              .finally(() => {
                if (++done === total) resolve();
              });
          }
          if (sent < total) setTimeout(tick, 1);
        };
        tick();
      });
      await reached;
      const arrivals = ((await hs.stats(true)).arrivals ?? []).filter(([seq]) => seq >= warmup && seq < total).map(([seq, at]) => at - sentAt[seq]!);
      await worker.stop();
      worker = undefined;
      const latency = summarize(answered);
      const toRoom = summarize(arrivals);
      const lag = summarize(lags);

      // Throughput: 16 clients, each POSTing as soon as its previous one was answered (the hub routes
      // what it accepts; no worker runs).
      const hubCpu = cpuSecondsOf(hub.pid);
      const clientCpu = process.cpuUsage();
      const http = await closedLoop(REQUESTS, async (i) => {
        const status = await post(total + i, 0);
        if (status !== 202) throw new Error(`POST answered ${status}`);
      });
      const hubCpuSeconds = cpuSecondsOf(hub.pid) - hubCpu;
      const httpClientCpuSeconds = cpuSeconds(process.cpuUsage(clientCpu));
      await waitFor('the hub to route every accepted entry', async () => (await ctx.redis.xlen(`${prefix}:in`)) === 0, { watch: [hub], timeoutMs: 120_000 });

      // The ceiling: the same fields XADDed by a bare loop, 16 in flight, on the same Redis.
      const redis = new Redis(REDIS_URL);
      await redis.ping();
      const redisCpu = parseRedisCpu(await ctx.redis.info('cpu'));
      const rawCpu = process.cpuUsage();
      const raw = await closedLoop(REQUESTS, async (i) => {
        await redis.xadd(`${prefix}:raw:in`, '*', 'to', '#g0', 'body', BODY(i), 'format', 'html', 'subject', `bench seq=${i} t=0`, 'producer', 'bench');
      });
      const rawClientCpuSeconds = cpuSeconds(process.cpuUsage(rawCpu));
      const rawRedisCpuSeconds = parseRedisCpu(await ctx.redis.info('cpu')) - redisCpu;
      redis.disconnect();
      const floor = await bareIngress(ctx, `${prefix}:floor:in`, total + REQUESTS);
      const perRequest = (seconds: number) => round((seconds * 1e6) / REQUESTS, 0);
      const ratio = http.perSecond / raw.perSecond;

      return {
        rows: [
          ['HTTP ingress, 16 keep-alive clients', `${fmt.rate(http.perSecond)} (${http.seconds.toFixed(2)} s; hub CPU ${round((hubCpuSeconds * 1e6) / REQUESTS, 0)} µs/request incl. routing)`],
          ['bare XADD loop, 16 in flight', `${fmt.rate(raw.perSecond)} (${raw.seconds.toFixed(2)} s; loop CPU ${perRequest(rawClientCpuSeconds)} µs + Redis ${perRequest(rawRedisCpuSeconds)} µs per XADD)`],
          ['CPU µs/request of the 16 undici clients', String(perRequest(httpClientCpuSeconds))],
          ['ratio ingress / bare XADD', fmt.pct(ratio)],
          ['  floor: bare node:http server, one XADD per POST', `${fmt.rate(floor.perSecond)} = ${fmt.pct(floor.perSecond / raw.perSecond)} of the bare XADD loop (server CPU ${perRequest(floor.cpuSeconds)} µs/request); the hub at ${fmt.pct(http.perSecond / floor.perSecond)} of it`],
          [`POST → 202 at ${RATE.toLocaleString('en-US')} req/s`, `${fmt.lat(latency)} (${latency.n} requests)`],
          ['POST → arrival in the room', `${fmt.lat(toRoom)} (${toRoom.n} messages)`],
          ['producer lag behind schedule', `p50 ${fmt.ms(lag.p50)} · p99 ${fmt.ms(lag.p99)}`],
          ['refused or failed', String(refused)],
        ],
        figures: {
          clients: CLIENTS,
          requests: REQUESTS,
          ingress: { ...http, hubCpuSeconds: round(hubCpuSeconds, 2) },
          bareXadd: { ...raw, loopCpuSeconds: round(rawClientCpuSeconds, 2), redisCpuSeconds: round(rawRedisCpuSeconds, 2) },
          httpClientCpuSeconds: round(httpClientCpuSeconds, 2),
          ratio: round(ratio, 3),
          floor: { ...floor, ratio: round(floor.perSecond / raw.perSecond, 3) },
          latencyMs: roundSummary(latency),
          toRoomMs: roundSummary(toRoom),
          producerLagMs: { p50: round(lag.p50, 2), p99: round(lag.p99, 2) },
          refused,
        },
        checks: [
          check('HTTP ingress ≥ 50 % of a bare XADD loop', round(ratio * 100, 1), '>=', 50, '%', {
            value: round((floor.perSecond / raw.perSecond) * 100, 1),
            what: 'a bare node:http server that XADDs each POST and answers 202, the same clients',
          }),
          check(`p99 POST → 202 ≤ 10 ms at ${RATE.toLocaleString('en-US')} req/s`, round(latency.p99, 2), '<=', 10, 'ms'),
        ],
      };
    } finally {
      await pool.close();
      await worker?.stop();
      await hub.stop();
      await hs.stop();
      await dropPrefix(ctx.redis, prefix);
    }
  },
};

/** POST bench message `i` to `/v1/groups/g<i mod 10>` (the readiness probe, `i` = -1, to g0); the homeserver reads `seq` and the send time from the title (the subject), as in the other workloads. */
function poster(pool: Pool): (i: number, at: number) => Promise<number> {
  return async (i, at) => {
    const res = await pool.request({ path: `/v1/groups/g${Math.max(0, i) % GROUPS}`, method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/html', title: `bench seq=${i} t=${at.toFixed(3)}` }, body: BODY(i) });
    await res.body.dump();
    return res.statusCode;
  };
}

/**
 * The floor (lib/bare-ingress.ts, a child with the hub's Node flags): the same closed loop of POSTs against a
 * bare HTTP server that XADDs each to `stream` and answers 202.
 */
async function bareIngress(ctx: BenchContext, stream: string, firstSeq: number): Promise<{ perSecond: number; seconds: number; cpuSeconds: number }> {
  const port = await freePort();
  const server = spawnNode('ingress-floor', {
    args: [fileURLToPath(new URL('../lib/bare-ingress.ts', import.meta.url)), REDIS_URL, stream, String(port)],
    env: ctx.nodeEnv,
    nodeArgs: ctx.nodeArgs,
    logDir: ctx.logDir,
    ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}),
  });
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CLIENTS, pipelining: 1 });
  try {
    const post = poster(pool);
    await waitFor('the bare ingress to answer', async () => (await post(-1, 0).catch(() => 0)) === 202, { watch: [server], timeoutMs: 30_000 });
    const cpu = cpuSecondsOf(server.pid);
    const run = await closedLoop(REQUESTS, async (i) => {
      const status = await post(firstSeq + i, 0);
      if (status !== 202) throw new Error(`the bare ingress answered ${status}`);
    });
    return { ...run, cpuSeconds: round(cpuSecondsOf(server.pid) - cpu, 2) };
  } finally {
    await pool.close();
    await server.stop();
  }
}

/** `count` calls of `one`, CLIENTS at a time, each client starting its next as soon as its last ended. */
async function closedLoop(count: number, one: (i: number) => Promise<void>): Promise<{ perSecond: number; seconds: number }> {
  let next = 0;
  const started = wallNow();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < count) await one(next++);
    }),
  );
  const seconds = (wallNow() - started) / 1000;
  return { perSecond: Math.round(count / seconds), seconds: round(seconds, 2) };
}

function cpuSeconds(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1e6;
}

