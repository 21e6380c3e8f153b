/**
 * One short run of hub and matrix worker before anything is measured, so
 * that every measured process starts as `npm start` does after its first
 * start: with Node's compile cache (NODE_COMPILE_CACHE in package.json)
 * holding every module already stripped of its types and compiled. The first
 * start strips TypeScript with a WebAssembly compiler that stays in the
 * process (about 20 MB of RSS); later starts read the cache and never load it.
 */
import type { BenchContext } from './context.ts';
import { runEndToEnd } from './e2e.ts';
import { startHomeserver } from './homeserver-client.ts';

export async function warmStart(ctx: BenchContext): Promise<void> {
  if (!ctx.nodeEnv['NODE_COMPILE_CACHE']) return;
  const hs = await startHomeserver({ logDir: ctx.logDir, name: 'warm-start-homeserver' });
  try {
    await runEndToEnd(ctx, { name: 'warm-start', hs, messages: 200, groups: 10, concurrency: ctx.concurrency, producer: { kind: 'burst' } });
  } finally {
    await hs.stop();
  }
}
