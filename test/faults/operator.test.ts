/**
 * Operators' mistakes and routine acts on a running hub, under load:
 *
 * - `XGROUP DESTROY` of the delivery streams' consumer groups: the workers
 *   make the group again (from the start of the stream) and read again the
 *   entries they, or another worker, still hold. Each delivery must be made
 *   once: email has no idempotency key, so a duplicate reaches a person; for
 *   Matrix, a send the homeserver folds by its transaction id is counted too.
 * - `DEL` of a delivery stream with a backlog: what it held is destroyed (the
 *   figures count it apart); the targets' order lists still name it, and new
 *   deliveries to those targets must not wait for the stale heads to be
 *   removed one by one.
 * - A graceful stop (SIGTERM) of a worker holding a large read-ahead, and a
 *   new worker started: what the old one read and did not make must be taken
 *   at once, not after `delivery.claimIdle` (10 minutes here, so that only a
 *   hand-back explains a prompt takeover).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromPairs } from '../../core/redis/fields.ts';
import { LOAD, rigPerTest, until } from './rig.ts';

const rigs = rigPerTest();

describe('faults: operators', () => {
  test('XGROUP DESTROY on the delivery streams under load: every delivery made once', async () => {
    const r = await rigs.start({ scenario: 'operator/xgroup-destroy', channels: ['matrix', 'email'] });
    r.hs.delay(10);
    const rooms = Array.from({ length: 4 }, () => r.room());
    r.writeMapping(Object.fromEntries([0, 1].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2), email: [`person${g}@example.org`] }])));
    await r.hub();
    await Promise.all([r.worker('matrix', { name: 'matrix worker 1' }), r.worker('matrix', { name: 'matrix worker 2' }), r.worker('email')]);
    const destroyed: Array<{ at: number; pending: Record<string, number> }> = [];
    await r.produce({
      count: LOAD,
      perSecond: 300,
      groupOf: (seq) => `#g${seq % 2}`,
      during: async (sent) => {
        for (const fraction of [0.3, 0.6]) {
          await until('load', () => sent() >= LOAD * fraction, 30_000);
          const pending: Record<string, number> = {};
          for (const channel of ['matrix', 'email']) {
            const stream = `${r.prefix}:deliver:${channel}`;
            pending[channel] = Number(((await r.redis.xpending(stream, channel)) as [number])[0]);
            await r.redis.xgroup('DESTROY', stream, channel);
          }
          destroyed.push({ at: sent(), pending });
        }
      },
    });
    r.notes.groupsDestroyed = destroyed;
    const figures = await r.settle(90_000);
    r.report(figures, { duplicates: 'counted' });
    assert.equal(figures.duplicates, 0, `deliveries made twice: ${JSON.stringify(figures.notes.duplicatesByChannel)}`);
    assert.equal(figures.notes.resendsAbsorbedByTxnId, 0, 'Matrix sends made twice (folded by the homeserver only thanks to their transaction ids)');
  });

  test('DEL of a delivery stream with a backlog: new deliveries to its targets go at once', async () => {
    const r = await rigs.start({ scenario: 'operator/del-delivery-stream', channels: ['matrix'] });
    // Two slow rooms: the backlog, and so each room's order list, grows long.
    r.hs.delay(20);
    const rooms = [r.room(), r.room()];
    r.writeMapping({ '#g': { matrix: rooms } });
    await r.hub();
    await r.worker('matrix');
    const stream = `${r.prefix}:deliver:matrix`;
    await r.produce({ count: LOAD, perSecond: 500, groupOf: () => '#g' });
    await until('the hub to route every message', async () => (await r.redis.xlen(`${r.prefix}:in`)) === 0, 30_000);
    // What DEL destroys is read in the same transaction, so the figures can tell it from a loss.
    const lists = rooms.map((room) => `${r.prefix}:order:matrix:${room}`);
    const replies = (await r.redis.multi().xrange(stream, '-', '+').llen(lists[0]!).llen(lists[1]!).del(stream).exec()) ?? [];
    const backlog = replies[0]![1] as Array<[string, string[]]>;
    const stale = [replies[1]![1], replies[2]![1]] as number[];
    for (const [, flat] of backlog) {
      const f = fromPairs(flat);
      r.destroyed.add(`matrix ${f.target} ${/seq=(\d+)/.exec(f.body ?? '')?.[1]}`);
    }
    r.notes.deleted = { deliveries: backlog.length, orderListLengths: stale };
    assert.ok(backlog.length > 0, 'the stream had a backlog when it was deleted');
    await r.produce({ count: Math.round(LOAD / 5), perSecond: 100, groupOf: () => '#g' });
    // Before, each stale head cost 100 ms: more than this for the lists here (over a thousand each).
    const figures = await r.settle(60_000);
    r.report(figures);
  });

  test('SIGTERM of a worker with a large read-ahead, a new worker started: it takes what the old one held at once', async () => {
    const r = await rigs.start({ scenario: 'operator/sigterm-read-ahead', channels: ['matrix'], delivery: { claimIdle: '10m' } });
    r.hs.delay(10);
    const rooms = [r.room(), r.room()];
    r.writeMapping({ '#g': { matrix: rooms } });
    await r.hub();
    let worker = await r.worker('matrix', { name: 'worker 1' });
    const stops: Array<{ at: number; pending: number; exit: string }> = [];
    await r.produce({
      count: LOAD,
      perSecond: 300,
      groupOf: () => '#g',
      during: async (sent) => {
        await until('load', () => sent() >= LOAD * 0.5, 30_000);
        const pending = Number(((await r.redis.xpending(`${r.prefix}:deliver:matrix`, 'matrix')) as [number])[0]);
        worker.child.kill('SIGTERM');
        const exit = await worker.exited;
        stops.push({ at: sent(), pending, exit: String(exit.code ?? exit.signal) });
        worker = await r.worker('matrix', { name: 'worker 2' });
      },
    });
    r.notes.stops = stops;
    // Generous for a loaded machine, and still far below claimIdle.
    const figures = await r.settle(180_000);
    r.report(figures);
    assert.ok(stops[0]!.pending > 100, `the stopped worker held a read-ahead (${stops[0]!.pending} pending)`);
  });
});
