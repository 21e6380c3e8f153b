/**
 * Redis out of memory (`maxmemory` below what it uses, `noeviction`) for 10 s
 * under load, on a private `redis-server`: every write that needs memory is
 * refused with OOM (the producer's XADDs included: those are not counted as
 * sent), while reads, acknowledgements and claims still work. The hub reads
 * entries into its pending list and cannot route them.
 *
 * What must hold: nothing lost, and no order inversions. The entries whose
 * routing failed are read again from the hub's own pending list before any
 * newer one, as soon as Redis takes writes again, not after
 * `delivery.claimIdle` (30 s here, as shipped) while newer ones go first.
 *
 * A backlog for the hub to read during the fault is made by pausing it
 * (SIGSTOP) for a second just before memory runs out.
 */
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startPrivateRedis } from '../support/private-redis.ts';
import { LOAD, rigPerTest, until } from './rig.ts';

const rigs = rigPerTest();

describe('faults: Redis out of memory', () => {
  test('maxmemory with noeviction for 10 s under load: nothing lost, nothing out of order, the failed routing goes first', async () => {
    const redis = await startPrivateRedis({ durable: false });
    rigs.onClose(() => redis.close());
    const server = new Redis(redis.url);
    rigs.onClose(() => server.disconnect());
    const r = await rigs.start({ scenario: 'redis/out-of-memory', channels: ['matrix'], redisUrl: redis.url, delivery: { claimIdle: '30s' } });
    r.hs.delay(5);
    const rooms = Array.from({ length: 8 }, () => r.room());
    r.writeMapping(Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])));
    const hub = await r.hub();
    await r.worker('matrix');
    const count = LOAD * 2;
    const fault: Record<string, unknown> = {};
    await r.produce({
      count,
      perSecond: 150,
      groupOf: (seq) => `#g${seq % 4}`,
      during: async (sent) => {
        await until('load', () => sent() >= count * 0.15, 30_000);
        hub.child.kill('SIGSTOP');
        const paused = sent();
        await until('a backlog', () => sent() >= paused + 150, 30_000);
        fault.usedMemory = (await server.info('memory')).match(/used_memory_human:(\S+)/)?.[1];
        await server.config('SET', 'maxmemory-policy', 'noeviction');
        await server.config('SET', 'maxmemory', '1');
        hub.child.kill('SIGCONT');
        fault.at = sent();
        await sleep(10_000);
        await server.config('SET', 'maxmemory', '0');
        fault.after = sent();
      },
    });
    r.notes.outOfMemory = fault;
    const figures = await r.settle(120_000);
    r.report(figures);
  });
});
