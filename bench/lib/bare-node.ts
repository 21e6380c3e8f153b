/**
 * The memory floor of any Node service of this kind, measured in the same
 * run: a bare Node process, with the hub's flags and environment, that has loaded ioredis and
 * holds one connection to Redis. What a hub or worker holds above it is its
 * own; what this holds (mostly the Node binary's resident pages and V8's
 * start-up heap) no code in the project can give back.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchContext } from './context.ts';
import { REDIS_URL, ROOT } from './context.ts';
import { memoryOf } from './proc-stats.ts';
import { spawnNode, waitFor } from './proc.ts';

const BARE = `
const { Redis } = await import('ioredis');
const redis = new Redis(process.env.REDIS_URL);
await redis.ping();
process.send('connected');
setInterval(() => void redis.ping(), 1000);
`;

export async function bareNodeMemory(ctx: BenchContext): Promise<{ rssMb: number; anonMb: number }> {
  const child = spawnNode('bare-node', { args: ['--input-type=module', '-e', BARE], cwd: ROOT, env: { ...ctx.nodeEnv, REDIS_URL }, logDir: ctx.logDir, nodeArgs: ctx.nodeArgs, ipc: true });
  try {
    let connected = false;
    child.proc.once('message', () => (connected = true));
    await waitFor('a bare Node process to connect to Redis', () => connected, { watch: [child] });
    // Settled: what start-up allocated and freed is given back before the reading.
    await sleep(1000);
    const memory = memoryOf(child.pid);
    if (!memory) throw new Error('bare-node: no /proc status');
    return { rssMb: Math.round(memory.rssMb * 10) / 10, anonMb: Math.round(memory.anonMb * 10) / 10 };
  } finally {
    await child.stop();
  }
}
