/**
 * Redis stopped (SIGKILL) and started again under load: a private
 * `redis-server` with `appendonly yes` and `appendfsync always` in a temp dir,
 * so that whatever it acknowledged to the producer survives. The hub and the
 * worker reconnect by themselves; every entry Redis acknowledged is delivered.
 * The producer carries its own idempotency `id`: an XADD whose answer was lost
 * in the crash is sent again by the client, and the hub folds the second copy.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPrivateRedis } from '../support/private-redis.ts';
import { LOAD, rigPerTest, until } from './rig.ts';

const rigs = rigPerTest();

describe('faults: Redis', () => {
  test('Redis SIGKILLed and started again twice under load: hub and worker reconnect, every acknowledged entry is delivered', async () => {
    const server = await startPrivateRedis({ durable: true });
    rigs.onClose(() => server.close());
    const r = await rigs.start({ scenario: 'redis/restart', channels: ['matrix'], redisUrl: server.url });
    r.hs.delay(5);
    const rooms = Array.from({ length: 8 }, () => r.room());
    r.writeMapping(Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])));
    const hub = await r.hub();
    const worker = await r.worker('matrix');
    const outages: Array<{ at: number; downMs: number }> = [];
    await r.produce({
      count: LOAD,
      perSecond: 250,
      groupOf: (seq) => `#g${seq % 4}`,
      producerIds: true,
      during: async (sent) => {
        for (const [fraction, downMs] of [[0.3, 2500], [0.65, 1000]] as const) {
          await until('load', () => sent() >= LOAD * fraction);
          await server.kill();
          outages.push({ at: sent(), downMs });
          await sleep(downMs);
          await server.start();
        }
      },
    });
    r.notes.outages = outages;
    const figures = await r.settle();
    const events = (await r.redis.xrange(`${r.prefix}:events`, '-', '+')) as Array<[string, string[]]>;
    r.notes.producerResendsFolded = events.filter(([, f]) => f[1] === 'duplicate').length;
    r.notes.reconnected = [hub, worker].map((p) => `${p.name.split(' ').pop()} ${p.running ? 'alive' : 'EXITED'}`).join(', ');
    r.report(figures);
    // A connection lost under a routing script is no fault of the entries: they stay pending, none is dead-lettered.
    assert.equal(figures.dead, 0, 'dead-lettered because Redis went away');
  });
});
