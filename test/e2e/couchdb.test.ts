/**
 * The mapping in CouchDB, end to end: a whole hub following the mapping
 * document of a real pouchdb-server, routing into rooms of the fake
 * homeserver. A revision is written the way an operator or another program
 * writes it (the hub's own source, or plain HTTP), and what is asserted is
 * where messages land.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startCouch, type TestCouch } from '../servers/couchdb.ts';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { type MatrixBot, type PrefixedHub, httpGet, matrixEnv, settled, startHubOnPrefix } from '../support/e2e.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { dropPrefix, testPrefix } from '../support/redis.ts';

const DOC = 'ccs.notifications';

describe('the mapping in CouchDB, followed live by a running hub', () => {
  let couch: TestCouch;
  let hs: Homeserver;
  let bot: MatrixBot;
  let dbSeq = 0;
  const cleanups: Array<() => Promise<void>> = [];

  /** A database of its own for each test. */
  const newDb = () => `e2e-mapping-${process.pid}-${++dbSeq}`;

  async function couchRequest(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`${couch.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(5000),
    });
    return { status: res.status, json: JSON.parse(await res.text()) as Record<string, unknown> };
  }

  /** Write the document over HTTP, as any other CouchDB client would; resolves with the new `_rev`. */
  async function writeDoc(db: string, mapping: unknown): Promise<string> {
    const created = await couchRequest('PUT', `/${db}`);
    assert.ok(created.status === 201 || created.status === 412, JSON.stringify(created.json));
    const current = await couchRequest('GET', `/${db}/${DOC}`);
    const rev = current.status === 200 ? { _rev: current.json._rev } : {};
    const put = await couchRequest('PUT', `/${db}/${DOC}`, { _id: DOC, ...rev, mapping });
    assert.equal(put.status, 201, JSON.stringify(put.json));
    return String(put.json.rev);
  }

  async function hubOn(db: string): Promise<TestHub> {
    const hub = await startTestHub({
      name: 'e2e-couch',
      env: matrixEnv(hs, bot),
      config: { logLevel: 'debug', mapping: { couchdbUrl: couch.url, db } },
    });
    cleanups.push(() => hub.stop());
    return hub;
  }

  /** Send a message and wait for its one delivery: resolves with the room it landed in. */
  async function landsIn(hub: TestHub, rooms: string[], body: string): Promise<string> {
    const id = await hub.send({ to: '#admins', body, format: 'text' });
    const [outcome] = await settled(hub, id, 1);
    assert.equal(outcome?.type, 'sent', JSON.stringify(outcome));
    const found = rooms.filter((room) => hs.messages(room).some((e) => e.content.body === body));
    assert.equal(found.length, 1, `${body} is in exactly one room`);
    return found[0]!;
  }

  before(async () => {
    [couch, hs] = await Promise.all([startCouch(), startHomeserver()]);
    bot = hs.registerUser('bot');
  });
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
    hs.assertNoSpecViolations();
  });
  after(async () => {
    while (cleanups.length) await cleanups.pop()!();
    await couch?.stop();
    await hs?.close();
  });

  test('no mapping yet: nothing is consumed; the document written through the hub\'s source then routes, waiting entries included', async () => {
    const db = newDb();
    assert.equal((await couchRequest('PUT', `/${db}`)).status, 201);
    const room = hs.createRoom(bot.userId);
    const hub = await hubOn(db);
    const early = await hub.send({ to: '#admins', body: 'sent before any mapping', format: 'text' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const inForce = () => hub.app.cradle.mappingStore.current?.revision;
    assert.equal(inForce(), undefined);
    assert.equal(await hub.redis.xlen(`${hub.prefix}:in`), 1, 'the entry waits in the ingress stream');
    assert.deepEqual(await hub.read('dead'), [], 'nothing is dead-lettered for want of a mapping');
    const notReady = await httpGet(hub.app.http!.port, '/readyz');
    assert.equal(notReady.status, 503);
    assert.match(notReady.body, /^not ready: no mapping loaded/);

    const rev = await hub.app.cradle.mappingSource.put({ _id: DOC, mapping: { '#admins': { matrix: [room] } } });
    await settled(hub, early, 1);
    assert.deepEqual(hs.messages(room).map((e) => e.content.body), ['sent before any mapping']);
    assert.equal(inForce(), rev);
    assert.equal(await landsIn(hub, [room], 'after the mapping'), room);
    assert.equal((await httpGet(hub.app.http!.port, '/readyz')).status, 200);
    assert.equal(await hub.redis.hget(`${hub.prefix}:mapping`, 'revision'), rev, 'the last good mapping is kept in Redis');
  });

  test('a new revision is in force without a restart', async (t) => {
    const db = newDb();
    const [oldRoom, newRoom] = [hs.createRoom(bot.userId), hs.createRoom(bot.userId)];
    await writeDoc(db, { '#admins': { matrix: [oldRoom] } });
    const hub = await hubOn(db);
    assert.equal(await landsIn(hub, [oldRoom, newRoom], 'before'), oldRoom);

    const t0 = performance.now();
    await writeDoc(db, { '#admins': { matrix: [newRoom] } });
    // Probe until a message lands in the new room: that is when the revision is in force for a producer.
    let n = 0;
    await eventually('a probe in the new room', async () => (await landsIn(hub, [oldRoom, newRoom], `probe ${++n}`)) === newRoom, 30_000);
    t.diagnostic(`the new revision in force for a producer ${Math.round(performance.now() - t0)} ms after the write (${n} probes)`);
    assert.equal(await landsIn(hub, [oldRoom, newRoom], 'after'), newRoom);
  });

  test('a revision that does not validate is refused whole: the old mapping keeps routing, and the error names the path', async () => {
    const db = newDb();
    const [room, other] = [hs.createRoom(bot.userId), hs.createRoom(bot.userId)];
    const good = await writeDoc(db, { '#admins': { matrix: [room] } });
    const hub = await hubOn(db);
    await eventually('the first revision in force', () => hub.app.cradle.mappingStore.current?.revision === good);

    const bad = await writeDoc(db, { '#admins': { matrix: [other, 'ops-room'] }, '#users': { matrix: [other] } });
    const store = hub.app.cradle.mappingStore;
    const error = await eventually('the bad revision refused', () => store.lastError?.includes(bad) && store.lastError);
    assert.match(error, /refused: mapping\["#admins"\]\.matrix\[1\]: not a room id, alias or user id/);
    assert.equal(store.current?.revision, good);
    assert.ok(hub.logs.some((l) => l.includes('mapping revision refused') && l.includes('mapping[\\"#admins\\"].matrix[1]')), 'the log names the path');
    assert.equal(await landsIn(hub, [room, other], 'still the old mapping'), room, 'not half applied: #admins still goes to the old room');
    const users = await hub.send({ to: '#users', body: 'to a group of the refused revision', format: 'text' });
    const letter = await eventually('a dead letter for #users', async () => (await hub.read('dead')).find((d) => d.entry === users));
    assert.match(letter.reason!, /^no group #users in the mapping/);
    assert.equal(await hub.redis.hget(`${hub.prefix}:mapping`, 'revision'), good, 'Redis keeps the last good revision');
    assert.match((await httpGet(hub.app.http!.port, '/metrics')).body, /^hub_mapping_refused_total 1$/m);
  });

  test('CouchDB down: routing goes on with the last good mapping; back up: a change made then takes effect', async (t) => {
    const db = newDb();
    const [first, second] = [hs.createRoom(bot.userId), hs.createRoom(bot.userId)];
    await writeDoc(db, { '#admins': { matrix: [first] } });
    const hub = await hubOn(db);
    assert.equal(await landsIn(hub, [first, second], 'while up'), first);

    await couch.kill();
    await eventually('the hub to notice CouchDB is gone', () => hub.app.cradle.mappingSource.connected === false);
    assert.equal(await landsIn(hub, [first, second], 'while CouchDB is down'), first);
    assert.equal((await httpGet(hub.app.http!.port, '/readyz')).status, 200, 'still ready: a mapping is in force');

    await couch.restart();
    const t0 = performance.now();
    const rev = await writeDoc(db, { '#admins': { matrix: [second] } });
    await eventually('the change made after the restart in force', () => hub.app.cradle.mappingStore.current?.revision === rev, 30_000);
    t.diagnostic(`CouchDB back: the revision written then in force ${Math.round(performance.now() - t0)} ms after the write`);
    assert.equal(await landsIn(hub, [first, second], 'after the restart'), second);
    assert.ok(hub.logs.some((l) => l.includes('mapping source unavailable; routing with the last good mapping')));
  });

  test('a second hub started while CouchDB is down routes with the last good mapping kept in Redis', async () => {
    const db = newDb();
    const prefix = testPrefix('e2e-couch-takeover');
    cleanups.push(() => dropPrefix(prefix));
    const room = hs.createRoom(bot.userId);
    const rev = await writeDoc(db, { '#admins': { matrix: [room] } });
    const options = { env: matrixEnv(hs, bot), config: { mapping: { couchdbUrl: couch.url, db } } };

    const first: PrefixedHub = await startHubOnPrefix(prefix, options);
    cleanups.push(() => first.stop());
    const { redis } = first.app.cradle;
    await eventually('the mapping kept in Redis', async () => (await redis.hget(`${prefix}:mapping`, 'revision')) === rev);
    await first.stop();
    cleanups.pop();

    await couch.kill();
    try {
      const second = await startHubOnPrefix(prefix, options);
      cleanups.push(() => second.stop());
      assert.equal(second.app.cradle.mappingStore.current?.revision, rev, 'the last good mapping, from Redis');
      const id = String(await second.app.cradle.redis.xadd(`${prefix}:in`, '*', 'to', '#admins', 'body', 'routed from Redis', 'format', 'text'));
      await eventually('the delivery', () => hs.messages(room).some((e) => e.content.body === 'routed from Redis'));
      await eventually('its sent event', async () =>
        ((await second.app.cradle.redis.xrange(`${prefix}:events`, '-', '+')) as Array<[string, string[]]>).some(([, f]) => f.includes('sent') && f.includes(id)),
      );
      assert.equal((await httpGet(second.app.http!.port, '/readyz')).status, 200);
      assert.ok(second.logs.some((l) => l.includes('mapping source unavailable')), 'it says CouchDB is unreachable');
    } finally {
      await couch.restart();
    }
  });

  test('CouchDB has locked the hub\'s user out: /readyz and the log say so and when the hub tries again, never the password', async () => {
    const locking = await startCouch({ admins: { admin: 'S3cr3t-pw-e2e' } });
    cleanups.push(() => locking.stop());
    const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` });
    assert.equal((await fetch(`${locking.url}/locked`, { method: 'PUT', headers: basic('S3cr3t-pw-e2e') })).status, 201);
    // Someone on this host tried an old password five times: CouchDB locks the user out for 5 minutes.
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${locking.url}/locked`, { headers: basic('S3cr3t-pw-old') })).status, 401);
    const hub = await startTestHub({
      name: 'e2e-couch-locked',
      env: { ...matrixEnv(hs, bot), COUCHDB_URL: `http://admin:S3cr3t-pw-e2e@127.0.0.1:${locking.port}` },
      config: { mapping: { db: 'locked' } },
    });
    cleanups.push(() => hub.stop());
    const ready = await eventually('the lockout reported', async () => {
      const answer = await httpGet(hub.app.http!.port, '/readyz');
      return answer.body.includes('locked out') && answer;
    });
    assert.equal(ready.status, 503);
    assert.match(ready.body, /^not ready: no mapping loaded: CouchDB has locked out user "admin" at http:\/\/admin@127\.0\.0\.1:\d+\/locked\/ccs\.notifications after repeated failed logins from this host \(403 Account is temporarily locked due to multiple authentication failures\): .*; next attempt at \S+Z \(in 6 minutes\)/);
    assert.doesNotMatch(ready.body, /set an admin user and password/);
    assert.ok(hub.logs.some((l) => l.includes('CouchDB has locked out user')));
    for (const text of [ready.body, ...hub.logs]) assert.doesNotMatch(text, /S3cr3t-pw/);
  });

  test('the mapping document deleted: the last good mapping stays in force until a new one is written', async () => {
    const db = newDb();
    const room = hs.createRoom(bot.userId);
    const rev = await writeDoc(db, { '#admins': { matrix: [room] } });
    const hub = await hubOn(db);
    await eventually('the mapping in force', () => hub.app.cradle.mappingStore.current?.revision === rev);

    assert.equal((await couchRequest('DELETE', `/${db}/${DOC}?rev=${rev}`)).status, 200);
    const store = hub.app.cradle.mappingStore;
    await eventually('the deletion noticed', () => store.lastError?.includes('deleted'));
    assert.equal(store.current?.revision, rev);
    assert.ok(hub.logs.some((l) => l.includes('the mapping document was deleted; routing with the last good revision')));
    assert.equal(await landsIn(hub, [room], 'after the deletion'), room);
    const ready = await httpGet(hub.app.http!.port, '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(await hub.redis.hget(`${hub.prefix}:mapping`, 'revision'), rev, 'Redis still holds it for a restart');

    // Writing a new document is how to change it.
    const other = hs.createRoom(bot.userId);
    const next = await writeDoc(db, { '#admins': { matrix: [other] } });
    await eventually('the new document in force', () => store.current?.revision === next);
    assert.equal(store.lastError, undefined);
    assert.equal(await landsIn(hub, [room, other], 'after a new document'), other);
  });
});
