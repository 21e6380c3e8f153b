/**
 * The memory floors of any Node service of this kind, measured in the same
 * run, with the hub's flags and environment. The hub's: a Node process that
 * holds one connection to Redis with ioredis and has loaded, and used once,
 * the libraries every hub and worker process is built from (zod validating
 * configuration and mappings into sentences, pino, prom-client's default
 * metrics, commander, awilix). A channel
 * worker's: the same process that has also loaded what a worker cannot do
 * without (undici's HTTP client, as the matrix worker loads it, and the hub's formatting with the HTML
 * libraries every channel renders with: sanitize-html, html-to-text,
 * htmlparser2, marked) and rendered 3,000 of the bench's messages with it
 * (sanitized and as plain text), as a worker does before its first peak.
 * What a hub or worker holds above its floor is its own; what the floor holds
 * (the Node binary's resident pages, V8's heap with those modules' code and
 * the garbage rendering leaves) no code in the project can give back, short
 * of building on other libraries.
 */
import { extname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import type { BenchContext } from './context.ts';
import { REDIS_URL, ROOT } from './context.ts';
import { BODY } from './e2e.ts';
import { memoryOf } from './proc-stats.ts';
import { spawnNode, waitFor } from './proc.ts';
import { type Floor, fmt } from './workload.ts';

const BARE = `
const { Redis } = await import('ioredis');
const redis = new Redis(process.env.REDIS_URL);
await redis.ping();
// The libraries the hub's own runtime loads in every process, each used once as the hub uses it.
const { z } = await import('zod');
z.object({ redis: z.string(), groups: z.record(z.string(), z.array(z.string())) }).parse({ redis: 'redis://', groups: { '#a': ['b'] } });
const { pino } = await import('pino');
pino({ level: 'info' }, pino.destination('/dev/null')).info('floor');
const { Registry, collectDefaultMetrics } = await import('prom-client');
const registry = new Registry();
collectDefaultMetrics({ register: registry });
await registry.metrics();
const { Command } = await import('commander');
new Command('hub').option('--only <role>').parse(['node', 'hub', '--only', 'hub']);
const { createContainer, asValue } = await import('awilix');
createContainer().register({ redis: asValue(redis) }).resolve('redis');
if (process.env.FORMAT_MODULE) {
  // undici's HTTP client as the matrix worker loads it (plugins/matrix/client.ts): without fetch and the rest.
  const { createRequire } = await import('node:module');
  const Agent = createRequire(process.env.FORMAT_MODULE)('undici/lib/dispatcher/agent.js');
  globalThis.agent = new Agent();
  const { renderBody, sanitizeHtml } = await import(process.env.FORMAT_MODULE);
  const body = ${BODY.toString()};
  for (let i = 0; i < 3000; i += 1) sanitizeHtml(renderBody(body(i), 'html').html);
}
process.send('connected');
setInterval(() => void redis.ping(), 1000);
`;

export interface MemoryFloor {
  rssMb: number;
  anonMb: number;
  /** What was measured, in words, for the targets it bounds. */
  what: string;
}

/** The floor a peak RSS target is shown beside. */
export function rssFloor(memory: MemoryFloor): Floor {
  return { value: memory.rssMb, what: memory.what };
}

/** Both floors, and the two rows a workload prints them as under its own peak RSS. */
export async function memoryFloors(ctx: BenchContext): Promise<{ hub: MemoryFloor; worker: MemoryFloor; rows: Array<[string, string]> }> {
  const { floor: hub, row } = await hubMemoryFloor(ctx);
  const worker = await bareNodeMemory(ctx, { worker: true });
  return { hub, worker, rows: [row, ['  floor: + undici and the HTML libraries, 3,000 renderings', `${shown(worker)}: a worker's`]] };
}

/** The hub's floor alone (a workload that runs no worker), and its row. */
export async function hubMemoryFloor(ctx: BenchContext): Promise<{ floor: MemoryFloor; row: [string, string] }> {
  const floor = await bareNodeMemory(ctx);
  return { floor, row: ["  floor: Node + ioredis + the hub's libraries, same flags", shown(floor)] };
}

function shown(floor: MemoryFloor): string {
  return `${fmt.mb(floor.rssMb)} (anonymous ${fmt.mb(floor.anonMb)})`;
}

/** The hub's floor, or with `worker` a channel worker's. */
async function bareNodeMemory(ctx: BenchContext, { worker = false } = {}): Promise<MemoryFloor> {
  const name = worker ? 'bare-worker' : 'bare-node';
  // The hub's own formatting (core/format), from the checkout or the build the hub runs from: rendered as a worker renders.
  const formatModule = pathToFileURL(join(ctx.hubRoot, `core/format${extname(ctx.cli)}`)).href;
  const child = spawnNode(name, { args: ['--input-type=module', '-e', BARE], cwd: ROOT, env: { ...ctx.nodeEnv, REDIS_URL, ...(worker ? { FORMAT_MODULE: formatModule } : {}) }, logDir: ctx.logDir, nodeArgs: ctx.nodeArgs, ipc: true });
  try {
    let connected = false;
    child.proc.once('message', () => (connected = true));
    await waitFor(`a ${name} process to connect to Redis`, () => connected, { watch: [child] });
    // Settled: what start-up allocated and freed is given back before the reading.
    await sleep(1000);
    const memory = memoryOf(child.pid);
    if (!memory) throw new Error(`${name}: no /proc status`);
    const what = worker
      ? "that process with undici's client and the HTML libraries, after 3,000 renderings"
      : 'a Node process with ioredis connected and the libraries every hub process loads (zod, pino, prom-client, commander, awilix), the same flags';
    return { rssMb: Math.round(memory.rssMb * 10) / 10, anonMb: Math.round(memory.anonMb * 10) / 10, what };
  } finally {
    await child.stop();
  }
}
