/**
 * Order per target with several processes (README, "Guarantees": "Deliveries
 * to one target are made in order"; "Command line": `hub worker <channel>` —
 * "run as many as you like"; `hub start --only hub` likewise).
 *
 * FAILS today, with no fault at all: the order is kept by the TargetScheduler
 * of one worker process, in memory. Three matrix workers read the one
 * consumer group round-robin, so the deliveries to one room are spread over
 * three processes that send them in parallel; two hubs route different
 * batches of the ingress stream at the same time, so a later message can be
 * fanned out (and XADDed to the delivery stream) before an earlier one.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LOAD, rigPerTest, until } from './rig.ts';

const rigs = rigPerTest();

describe('faults: order per target with several processes', () => {
  for (const [hubs, workers] of [[1, 3], [2, 1]] as const) {
    test(`${hubs} hub(s) and ${workers} matrix worker(s), no fault: every room gets its messages in the order they were sent`, async () => {
      const r = await rigs.start({ scenario: `order/${hubs}-hubs-${workers}-workers`, channels: ['matrix'] });
      r.hs.delay(5);
      const rooms = Array.from({ length: 12 }, () => r.room());
      r.writeMapping(Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 3, g * 3 + 3) }])));
      await Promise.all([
        ...Array.from({ length: hubs }, (_, i) => r.hub(`hub ${i + 1}`)),
        ...Array.from({ length: workers }, (_, i) => r.worker('matrix', { name: `worker ${i + 1}` })),
      ]);
      await r.produce({ count: LOAD, perSecond: 400, groupOf: (seq) => `#g${seq % 4}` });
      const figures = await r.settle();
      r.report(figures);
      assert.deepEqual(r.outOfOrder, {}, 'deliveries that overtook a later message to the same room');
    });
  }

  test('an order list out of stream order (as a replay between two routings could leave it): its target is not wedged, and the list decides', async () => {
    const r = await rigs.start({ scenario: 'order/list-out-of-stream-order', channels: ['matrix'] });
    const rooms = Array.from({ length: 4 }, () => r.room());
    r.writeMapping({ '#g0': { matrix: rooms.slice(0, 2) }, '#g1': { matrix: rooms.slice(2) } });
    await r.hub();
    // No worker yet: the deliveries wait in the stream and in their rooms' order lists.
    const first = 200;
    await r.produce({ count: first, perSecond: 1000, groupOf: (seq) => `#g${seq % 2}` });
    await until('every delivery routed', async () => (await r.redis.xlen(`${r.prefix}:deliver:matrix`)) === first * 2, 30_000);
    // One room's list reversed: a worker reads its deliveries in stream order, and the list says the opposite.
    const reversed = rooms[0]!;
    const listed = (await r.redis.eval(
      `local l = redis.call('LRANGE', KEYS[1], 0, -1) redis.call('DEL', KEYS[1]) for i = #l, 1, -1 do redis.call('RPUSH', KEYS[1], l[i]) end return #l`,
      1,
      `${r.prefix}:order:matrix:${reversed}`,
    )) as number;
    await r.worker('matrix');
    await r.produce({ count: LOAD - first, perSecond: 300, groupOf: (seq) => `#g${seq % 2}` });
    const figures = await r.settle();
    r.report(figures, { order: { notPromised: 'one room\'s order list was reversed by hand: that room follows its list' } });
    // The reversed room got its first messages in the list's order (every pair among them inverted), then the rest in order; the others in order.
    assert.deepEqual(figures.notes.inversionsByTarget, { [`matrix ${reversed}`]: (listed * (listed - 1)) / 2 });
  });
});
