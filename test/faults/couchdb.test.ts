/**
 * CouchDB under load, with the hub and the worker as processes: CouchDB away
 * (killed) when the hub starts (the last good mapping kept in Redis serves),
 * cut off from the hub in the middle of a load while the mapping is changed
 * (routing goes on with the mapping in force), and back (the change made
 * meanwhile takes effect). (test/e2e/couchdb.test.ts covers the same states
 * in-process, without load.)
 */
import assert from 'node:assert/strict';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { describe, test } from 'node:test';
import { type TestCouch, startCouch } from '../servers/couchdb.ts';
import { type Group, LOAD, rigPerTest, until } from './rig.ts';

const rigs = rigPerTest();

async function putMapping(c: TestCouch, mapping: Record<string, Group>): Promise<string> {
  const url = `${c.url}/notifications/ccs.notifications`;
  const current = await fetch(url);
  const rev = current.ok ? ((await current.json()) as { _rev: string })._rev : undefined;
  const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...(rev ? { _rev: rev } : {}), mapping }) });
  const text = await res.text();
  assert.ok(res.ok, `PUT mapping: ${res.status} ${text}`);
  return (JSON.parse(text) as { rev: string }).rev;
}

/** A TCP proxy in front of CouchDB: `cut()` makes CouchDB unreachable for the hub alone, while the test still writes to it. */
async function couchProxy(target: number): Promise<{ url: string; cut(): void; restore(): void; close(): Promise<void> }> {
  let cut = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = connect(target, '127.0.0.1');
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

describe('faults: CouchDB', () => {
  test('CouchDB away at start, cut off under load while the mapping changes, back: routing goes on, the change takes effect', async () => {
    const c = await startCouch();
    rigs.onClose(() => c.stop());
    const p = await couchProxy(c.port);
    rigs.onClose(p.close);
    assert.ok((await fetch(`${c.url}/notifications`, { method: 'PUT' })).ok);
    const r = await rigs.start({ scenario: 'couchdb/away-and-back', channels: ['matrix'], env: { COUCHDB_URL: p.url } });
    const rooms = Array.from({ length: 10 }, () => r.room());
    const m1: Record<string, Group> = Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }]));
    const inForce = () => r.redis.hget(`${r.prefix}:mapping`, 'revision');
    const applied = async (rev: string) => until(`revision ${rev} in force`, async () => (await inForce()) === rev);

    // A hub sees the mapping once (and keeps it in Redis); then it and CouchDB go away.
    const rev1 = await putMapping(c, m1);
    const first = await r.hub('hub 1');
    await applied(rev1);
    await first.kill('SIGKILL');
    await c.kill();

    // Away at start: a new hub routes with the mapping kept in Redis.
    r.expect(m1);
    await Promise.all([r.hub('hub 2'), r.worker('matrix')]);
    const third = Math.round(LOAD / 3);
    await r.produce({ count: third, perSecond: 250, groupOf: (seq) => `#g${seq % 4}` });

    // Back: a change takes effect.
    await c.restart();
    const m2: Record<string, Group> = { ...m1, '#g0': { matrix: [...m1['#g0']!.matrix!, rooms[8]!] } };
    let written = Date.now();
    const rev2 = await putMapping(c, m2);
    await applied(rev2);
    r.notes.changeAfterCouchRestartMs = Date.now() - written;

    // Cut off in the middle of a load, and the mapping changed meanwhile: routing goes on with the mapping in force.
    r.expect(m2);
    const m3: Record<string, Group> = { ...m2, '#g1': { matrix: [...m2['#g1']!.matrix!, rooms[9]!] } };
    let rev3 = '';
    await r.produce({
      count: third,
      perSecond: 250,
      groupOf: (seq) => `#g${seq % 4}`,
      during: async (sent) => {
        await until('load', () => sent() >= third * 0.3);
        p.cut();
        rev3 = await putMapping(c, m3);
      },
    });
    assert.equal(await inForce(), rev2, 'the hub cannot have seen the change while cut off');

    // Back: the change made meanwhile takes effect.
    p.restore();
    written = Date.now();
    await applied(rev3);
    r.notes.changeMadeWhileAwayMs = Date.now() - written;
    r.expect(m3);
    await r.produce({ count: LOAD - 2 * third, perSecond: 250, groupOf: (seq) => `#g${seq % 4}` });

    const figures = await r.settle();
    r.notes.newRoomsReached = [rooms[8]!, rooms[9]!].map((room) => r.hs.messages(room).length);
    r.report(figures);
  });
});
