/**
 * Many consumers on one Redis: two hubs and three matrix workers share the
 * streams. Each entry is fanned out once and each delivery made once: no
 * second `routed` event for an entry, no second `sent` event for a delivery,
 * no transaction the homeserver sees twice.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LOAD, rigPerTest } from './rig.ts';
import { fromPairs } from '../../core/redis/fields.ts';

const rigs = rigPerTest();

describe('faults: many consumers', () => {
  test('two hubs and three matrix workers on the same Redis: nothing is processed twice', async () => {
    const r = await rigs.start({ scenario: 'consumers/2-hubs-3-workers', channels: ['matrix'] });
    r.hs.delay(5);
    const rooms = Array.from({ length: 12 }, () => r.room());
    r.writeMapping(Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 3, g * 3 + 3) }])));
    await Promise.all([r.hub('hub A'), r.hub('hub B'), r.worker('matrix', { name: 'worker 1' }), r.worker('matrix', { name: 'worker 2' }), r.worker('matrix', { name: 'worker 3' })]);
    await r.produce({ count: LOAD, perSecond: 400, groupOf: (seq) => `#g${seq % 4}` });
    const figures = await r.settle();

    const events = (await r.redis.xrange(`${r.prefix}:events`, '-', '+')) as Array<[string, string[]]>;
    const routed = new Map<string, number>();
    const sent = new Map<string, number>();
    for (const [, flat] of events) {
      const f = fromPairs(flat);
      if (f.type === 'routed') routed.set(f.entry!, (routed.get(f.entry!) ?? 0) + 1);
      if (f.type === 'sent') sent.set(f.delivery!, (sent.get(f.delivery!) ?? 0) + 1);
    }
    const takeovers = r.processes.flatMap((p) => p.logs.filter((l) => String(l.msg).startsWith('took over')).map((l) => `${p.name.split(' ').slice(1).join(' ')}: ${String(l.count)}`));
    r.notes.routedTwice = [...routed.values()].filter((n) => n > 1).length;
    r.notes.sentTwice = [...sent.values()].filter((n) => n > 1).length;
    r.notes.takeovers = takeovers.length ? takeovers : 'none';
    r.report(figures);
    assert.equal(routed.size, figures.messages, 'one routed event per message');
    assert.equal(r.notes.routedTwice, 0, 'no entry fanned out twice');
    assert.equal(r.notes.sentTwice, 0, 'no delivery recorded as sent twice');
    assert.equal(figures.notes.resendsAbsorbedByTxnId, 0, 'no delivery sent to the homeserver twice');
  });
});
