/**
 * The least a delivery costs a matrix worker beside its PUT, measured in the
 * bench process on the same machine and run: rendering the message as the
 * plugin does (the body sanitized to the Matrix subset, and its plain-text
 * copy), and one round trip to Redis: the worker's one call per tick, which
 * settles the deliveries that ended in it and asks the turns of the next ones
 * (their turn in the target's order, still their worker's, not being made
 * elsewhere).
 */
import type { OutboundMessage } from '../../core/plugin-api.ts';
import { messageContent } from '../../plugins/matrix/message.ts';
import type { BenchContext } from './context.ts';
import { BODY } from './e2e.ts';

function cpuUsPer(n: number, since: NodeJS.CpuUsage): number {
  const cpu = process.cpuUsage(since);
  return Math.round((cpu.user + cpu.system) / n);
}

export async function workerFloor(ctx: BenchContext, n = 3000): Promise<{ renderUs: number; roundTripUs: number }> {
  // Distinct messages, as a worker meets them; the first third warms the JIT up.
  const message = (i: number): OutboundMessage => ({ to: ['#g0'], subject: `bench seq=${i} t=${i}.123`, body: BODY(i), format: 'html' });
  for (let i = 0; i < n / 3; i += 1) messageContent(message(i), 'm.text');
  let since = process.cpuUsage();
  for (let i = n; i < 2 * n; i += 1) messageContent(message(i), 'm.text');
  const renderUs = cpuUsPer(n, since);

  const sha = (await ctx.redis.script('LOAD', 'return 1')) as string;
  for (let i = 0; i < n / 3; i += 1) await ctx.redis.evalsha(sha, 0);
  since = process.cpuUsage();
  for (let i = 0; i < n; i += 1) await ctx.redis.evalsha(sha, 0);
  return { renderUs, roundTripUs: cpuUsPer(n, since) };
}
