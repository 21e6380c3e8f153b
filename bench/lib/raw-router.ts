/**
 * The routing ceiling, run as a child process: the hub's batching (XREADGROUP
 * COUNT 200 on a reader connection of its own) with no logic at all: each
 * entry's fields XADDed to one deliver stream, the batch XACKed, all in one
 * pipeline per batch. Exits once it has moved `count` entries.
 *
 * `node bench/lib/raw-router.ts <redisUrl> <in> <out> <count> [batch]`
 */
import { Redis } from 'ioredis';

const [url = 'redis://127.0.0.1:6379', input = '', output = '', countArg = '0', batchArg = '200'] = process.argv.slice(2);
const count = Number(countArg);
const batch = Number(batchArg);
const GROUP = 'raw';
const redis = new Redis(url);
const reader = redis.duplicate();

try {
  await redis.xgroup('CREATE', input, GROUP, '0', 'MKSTREAM').catch((err: Error) => {
    if (!err.message.includes('BUSYGROUP')) throw err;
  });
  let moved = 0;
  while (moved < count) {
    const reply = (await reader.xreadgroup('GROUP', GROUP, 'raw-1', 'COUNT', batch, 'BLOCK', 1000, 'STREAMS', input, '>')) as [string, [string, string[]][]][] | null;
    const entries = reply?.[0]?.[1] ?? [];
    if (entries.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const [, fields] of entries) pipeline.xadd(output, '*', ...fields);
    pipeline.xack(input, GROUP, ...entries.map(([id]) => id));
    const results = (await pipeline.exec()) ?? [];
    for (const [err] of results) if (err) throw err;
    moved += entries.length;
  }
} finally {
  reader.disconnect();
  redis.disconnect();
}
