import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { CouchMappingSource, type CouchMappingSourceOptions, type CouchSourceError } from '../../core/mapping/couch-source.ts';
import type { MappingUpdate } from '../../core/mapping/source.ts';
import { startCouch, type TestCouch } from '../servers/couchdb.ts';
import { freePort } from '../servers/free-port.ts';

const DOC = 'ccs.notifications';
const fast = { heartbeatMs: 200, timeoutMs: 1_000, backoff: { initialMs: 50, maxMs: 300 } };

/** A source plus everything it reported, and a way to wait for what it has not reported yet. */
function follow(options: Partial<CouchMappingSourceOptions> & { url: string; db: string }) {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  const source = new CouchMappingSource({ docId: DOC, logger, ...fast, ...options });
  const updates: MappingUpdate[] = [];
  const errors: Error[] = [];
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  const until = async (what: string, check: () => boolean, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; updates ${JSON.stringify(updates)}, errors ${errors.map((e) => e.message)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20);
        waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  };
  const started = source.start(
    (u) => (updates.push(u), wake()),
    (e) => (errors.push(e), wake()),
  );
  return { source, updates, errors, lines, until, started, revision: (rev: string) => until(`revision ${rev}`, () => updates.some((u) => u.revision === rev)) };
}

async function couch(url: string, method: string, path: string, body?: unknown, login?: string): Promise<{ status: number; json: any }> {
  const headers = { 'content-type': 'application/json', ...(login ? { authorization: `Basic ${Buffer.from(login).toString('base64')}` } : {}) };
  const res = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: JSON.parse(await res.text()) };
}

describe('CouchMappingSource against pouchdb-server', () => {
  let server: TestCouch;
  before(async () => {
    server = await startCouch();
  });
  after(() => server.stop());

  test('put creates the database, and the current document, new revisions and deletion are emitted', async (t) => {
    const db = 'n1';
    const writer = new CouchMappingSource({ url: server.url, db, docId: DOC, logger: pino({ level: 'silent' }) });
    assert.equal(await writer.get(), null, 'no database yet: absent');
    const rev1 = await writer.put({ mapping: { '#admins': { email: ['a@b.c'] } } });
    assert.match(rev1, /^1-/);

    const f = follow({ url: server.url, db });
    await f.started;
    await f.revision(rev1);
    assert.deepEqual((f.updates[0]?.document as { mapping: unknown }).mapping, { '#admins': { email: ['a@b.c'] } });
    assert.equal(f.source.connected, true);

    const t0 = performance.now();
    const rev2 = await writer.put({ _id: 'ignored', _rev: 'stale', mapping: { '#users': { email: ['u@b.c'] } } });
    await f.revision(rev2);
    t.diagnostic(`a new revision emitted ${Math.round(performance.now() - t0)} ms after the write`);
    assert.equal((await writer.get())?.revision, rev2);

    const removed = await couch(server.url, 'DELETE', `/${db}/${DOC}?rev=${rev2}`);
    await f.until('deletion', () => f.updates.at(-1)?.document === null);
    assert.equal(f.updates.at(-1)?.revision, removed.json.rev);
    assert.deepEqual(f.errors, []);
    await f.source.stop();
    assert.equal(f.source.connected, false);
  });

  test('emits null when the document is absent, then the document once it is written', async () => {
    const db = 'n2';
    await couch(server.url, 'PUT', `/${db}`);
    const f = follow({ url: server.url, db });
    await f.until('null document', () => f.updates.length === 1);
    assert.deepEqual(f.updates[0], { revision: '', document: null });
    const { json } = await couch(server.url, 'PUT', `/${db}/${DOC}`, { mapping: {} });
    await f.revision(json.rev);
    await f.source.stop();
  });

  test('a long-poll the server holds past its deadline is issued again, and changes still arrive', async () => {
    const db = 'n6';
    const writer = new CouchMappingSource({ url: server.url, db, docId: DOC, logger: pino({ level: 'silent' }) });
    await writer.put({ mapping: {} });
    const f = follow({ url: server.url, db, heartbeatMs: 50, timeoutMs: 200 }); // deadline 300 ms; pouchdb-server ignores timeout
    await f.until('connected', () => f.source.connected);
    await new Promise((resolve) => setTimeout(resolve, 800));
    const rev = await writer.put({ mapping: { '#late': {} } });
    await f.revision(rev);
    assert.deepEqual(f.errors, []);
    await f.source.stop();
  });

  test('follows again by itself after the server restarts, without repeating what it emitted', async () => {
    const db = 'n3';
    const writer = new CouchMappingSource({ url: server.url, db, docId: DOC, logger: pino({ level: 'silent' }) });
    const rev1 = await writer.put({ mapping: {} });
    const f = follow({ url: server.url, db });
    await f.revision(rev1);
    await server.restart();
    await f.until('the lost connection reported', () => f.errors.length > 0);
    const rev2 = await writer.put({ mapping: { '#a': {} } });
    await f.revision(rev2);
    assert.equal(f.source.connected, true);

    await server.kill(); // a crash this time
    await f.until('the crash noticed', () => !f.source.connected);
    await server.restart();
    const rev3 = await writer.put({ mapping: { '#b': {} } });
    await f.revision(rev3);
    assert.deepEqual(
      f.updates.map((u) => u.revision),
      [rev1, rev2, rev3],
    );
    await f.source.stop();
  });

  test('started while CouchDB is down: resolves at once, reports the failure once however often it retries, emits once it is up', async () => {
    const port = await freePort();
    const f = follow({ url: `http://admin:S3cr3t-pw-down@127.0.0.1:${port}`, db: 'n4' });
    await f.started;
    assert.deepEqual([f.source.connected, f.updates.length, f.errors.length], [false, 0, 0], 'start() resolved before CouchDB answered anything');
    await f.until('a failure', () => f.errors.length >= 1);
    assert.equal(f.source.connected, false);
    assert.match(f.errors[0]?.message ?? '', /unreachable.*ECONNREFUSED/);
    const reported = f.errors.length;
    await assert.rejects(f.source.get(), /^Error: CouchDB: cannot read http:\/\/admin@127\.0\.0\.1:\d+\/n4\/ccs\.notifications: unreachable/);
    const late = await startCouch({ port, admins: { admin: 'S3cr3t-pw-down' } });
    try {
      await couch(late.url, 'PUT', '/n4', undefined, 'admin:S3cr3t-pw-down');
      const put = await couch(late.url, 'PUT', `/n4/${DOC}`, { mapping: {} }, 'admin:S3cr3t-pw-down');
      await f.revision(put.json.rev);
      assert.equal(f.source.connected, true);
      assert.equal(new Set(f.errors.map((e) => e.message)).size, f.errors.length, 'each failure reported once, not once per retry');
      assert.ok(reported <= f.errors.length && f.errors.length <= 2, f.errors.map((e) => e.message).join('\n'));
    } finally {
      await f.source.stop();
      await late.stop();
    }
    for (const text of [f.source.description, ...f.errors.map((e) => e.message), ...f.lines]) assert.doesNotMatch(text, /S3cr3t-pw-down/);
  });

  test('credentials: used when right, refused clearly and never shown when wrong', async () => {
    const secured = await startCouch();
    try {
      // pouchdb-server crashes creating a database once an admin exists: create it first.
      await couch(secured.url, 'PUT', '/n5');
      const { json } = await couch(secured.url, 'PUT', `/n5/${DOC}`, { mapping: {} });
      await couch(secured.url, 'PUT', '/_config/admins/admin', 'S3cr3t-pw-right');
      const authed = `http://admin:S3cr3t-pw-right@127.0.0.1:${secured.port}`;
      const good = follow({ url: authed, db: 'n5' });
      await good.revision(json.rev);
      assert.equal(good.source.description, `http://admin@127.0.0.1:${secured.port}/n5/${DOC}`);
      await good.source.stop();

      const bad = follow({ url: `http://admin:S3cr3t%2Fwrong@127.0.0.1:${secured.port}`, db: 'n5' });
      await bad.until('a refusal', () => bad.errors.length >= 2);
      await bad.source.stop();
      assert.match(bad.errors[0]?.message ?? '', /^CouchDB refused the credentials of user "admin" for http:\/\/admin@127\.0\.0\.1:\d+\/n5\/ccs\.notifications \(401/);
      assert.equal((bad.errors[0] as { statusCode?: number }).statusCode, 401);
      assert.deepEqual(bad.updates, []);
      await assert.rejects(new CouchMappingSource({ url: `http://admin:S3cr3t%2Fwrong@127.0.0.1:${secured.port}`, db: 'n5', docId: DOC, logger: pino({ level: 'silent' }) }).put({}), (e: Error) => {
        assert.match(e.message, /refused the credentials/);
        return true;
      });
      for (const text of [bad.source.description, ...bad.errors.map((e) => `${e.message} ${e.stack}`), ...bad.lines]) {
        assert.doesNotMatch(text, /S3cr3t|wrong/);
      }
    } finally {
      await secured.stop();
    }
  });

  test('CouchDB back from an outage: the next revision is emitted at the first retry, not after a backoff grown meanwhile', async (t) => {
    const away = await startCouch();
    try {
      const writer = new CouchMappingSource({ url: away.url, db: 'n7', docId: DOC, logger: pino({ level: 'silent' }) });
      const rev1 = await writer.put({ mapping: {} });
      // A hub's own settings: backoff 1 s → 30 s, refused connections retried within a second.
      const f = follow({ url: away.url, db: 'n7', heartbeatMs: undefined, timeoutMs: undefined, backoff: undefined });
      await f.revision(rev1);
      await away.kill();
      await f.until('the outage noticed', () => !f.source.connected);
      // Away for 6 s: long enough for a doubling backoff to reach 4 s, and wait up to 8 s once CouchDB is back.
      await sleep(6_000);
      await away.restart();
      const t0 = performance.now();
      const rev2 = await writer.put({ mapping: { '#back': {} } });
      await f.revision(rev2);
      t.diagnostic(`after a 6 s outage: the revision written once CouchDB was back emitted ${Math.round(performance.now() - t0)} ms after the write`);
      assert.deepEqual(f.updates.map((u) => u.revision), [rev1, rev2]);
      assert.equal(new Set(f.errors.map((e) => e.message)).size, f.errors.length, 'the outage reported once per kind of failure, not once per retry');
      await f.source.stop();
    } finally {
      await away.stop();
    }
  });

  test('the test CouchDB locks a user out as CouchDB 3 does', async () => {
    const LOCKED = { error: 'forbidden', reason: 'Account is temporarily locked due to multiple authentication failures' };
    const locking = await startCouch({ admins: { admin: 'S3cr3t-pw-lock', ops: 'S3cr3t-pw-ops' }, lockout: { periodMs: 1_500 } });
    const login = async (name: string, password: string, from?: string) => {
      const headers = { authorization: `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`, ...(from ? { 'x-forwarded-for': from } : {}) };
      const res = await fetch(`${locking.url}/`, { headers });
      return { status: res.status, json: JSON.parse(await res.text()) };
    };
    try {
      for (let i = 0; i < 4; i++) assert.equal((await login('admin', 'wrong')).status, 401);
      assert.equal((await login('admin', 'S3cr3t-pw-lock')).status, 200, 'four failures: not locked, and a success does not reset the count');
      assert.deepEqual(await login('admin', 'wrong'), { status: 401, json: { error: 'unauthorized', reason: 'Name or password is incorrect.' } });
      assert.deepEqual(await login('admin', 'wrong'), { status: 403, json: LOCKED }, 'the fifth failure locks');
      assert.deepEqual(await login('admin', 'S3cr3t-pw-lock'), { status: 403, json: LOCKED }, 'the right password too');
      assert.equal((await login('admin', 'S3cr3t-pw-lock', '192.0.2.7')).status, 200, 'from another address (through a local proxy) it is not locked');
      assert.equal((await login('ops', 'S3cr3t-pw-ops')).status, 200, 'another user is not locked');
      assert.equal((await login('nobody', 'wrong')).status, 401, 'an unknown user is never locked out');
      // The lock lifts by itself once the count's period is over.
      for (let tries = 0; (await login('admin', 'S3cr3t-pw-lock')).status !== 200; tries++) {
        assert.ok(tries < 600, 'the lock never lifted');
        await sleep(50);
      }
      assert.equal((await login('admin', 'wrong')).status, 401, 'counted afresh');

      for (let i = 0; i < 6; i++) await login('admin', 'wrong');
      assert.equal((await login('admin', 'S3cr3t-pw-lock')).status, 403);
      const changed = await fetch(`${locking.url}/_config/admins/admin`, {
        method: 'PUT', body: JSON.stringify('S3cr3t-pw-new'), headers: { authorization: `Basic ${Buffer.from('ops:S3cr3t-pw-ops').toString('base64')}` },
      });
      assert.equal(changed.status, 200, await changed.text());
      assert.equal((await login('admin', 'S3cr3t-pw-new')).status, 200, 'a new password (a new salt) is not locked out');
    } finally {
      await locking.stop();
    }
  });

  test('a wrong password: two followers on one host keep trying, yet never lock the account for the other clients; the password never shows', async (t) => {
    const lockout = { threshold: 5, periodMs: 2_000 };
    const host = await startCouch({ admins: { admin: 'S3cr3t-pw-right' }, lockout });
    const right = 'admin:S3cr3t-pw-right';
    try {
      assert.equal((await couch(host.url, 'PUT', '/n8', undefined, right)).status, 201);
      const bad = [1, 2].map(() => follow({ url: `http://admin:S3cr3t-pw-bad@127.0.0.1:${host.port}`, db: 'n8', lockout }));
      // Another client of the host, with the right password, all along.
      const answers = new Map<number, number>();
      let probing = true;
      const probe = (async () => {
        while (probing) {
          const { status } = await couch(host.url, 'GET', '/n8', undefined, right);
          answers.set(status, (answers.get(status) ?? 0) + 1);
          await sleep(50);
        }
      })();
      // Five failed logins each: enough to lock the account five times over, had they been made at once.
      await Promise.all(bad.map((b) => b.until('five failed logins', () => b.errors.length >= 5, 60_000)));
      probing = false;
      await probe;
      await Promise.all(bad.map((b) => b.source.stop()));
      t.diagnostic(`the right password's answers meanwhile: ${JSON.stringify(Object.fromEntries(answers))}`);
      assert.deepEqual([...answers.keys()], [200], 'the right password worked all along: never locked out');
      for (const b of bad) {
        assert.deepEqual([...new Set(b.errors.map((e) => (e as CouchSourceError).statusCode))], [401], 'refused, never locked out');
        assert.match(
          b.errors[0]?.message ?? '',
          /^CouchDB refused the credentials of user "admin" for http:\/\/admin@127\.0\.0\.1:\d+\/n8\/ccs\.notifications \(401 Name or password is incorrect\.\); check the user and password in COUCHDB_URL; next attempt at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in \d+ seconds?, paced to stay below CouchDB's lockout \(5 failed logins in 2 seconds\)\)$/,
        );
        for (const text of [...b.errors.map((e) => `${e.message} ${e.stack}`), ...b.lines]) assert.doesNotMatch(text, /S3cr3t-pw/);
      }
    } finally {
      await host.stop();
    }
  });

  test('locked out (by whoever failed to log in): says "locked out" and when it tries again, not "set a user and password"; follows once the lock lifts', async () => {
    const lockout = { threshold: 5, periodMs: 1_500 };
    const host = await startCouch({ admins: { admin: 'S3cr3t-pw-right' }, lockout });
    try {
      await couch(host.url, 'PUT', '/n9', undefined, 'admin:S3cr3t-pw-right');
      const { json } = await couch(host.url, 'PUT', `/n9/${DOC}`, { mapping: {} }, 'admin:S3cr3t-pw-right');
      // A script on this host with an old password.
      for (let i = 0; i < 5; i++) assert.equal((await couch(host.url, 'GET', '/n9', undefined, 'admin:S3cr3t-pw-old')).status, 401);
      const f = follow({ url: `http://admin:S3cr3t-pw-right@127.0.0.1:${host.port}`, db: 'n9', lockout });
      await f.until('the refusal', () => f.errors.length >= 1);
      const [refusal] = f.errors as CouchSourceError[];
      assert.equal(refusal?.statusCode, 403);
      assert.match(
        refusal?.message ?? '',
        /^CouchDB has locked out user "admin" at http:\/\/admin@127\.0\.0\.1:\d+\/n9\/ccs\.notifications after repeated failed logins from this host \(403 Account is temporarily locked due to multiple authentication failures\): check the password in COUCHDB_URL, and any other client of this host that logs in as that user; CouchDB lifts the lock at most 2 seconds after the first failure; next attempt at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 2 seconds\)$/,
      );
      assert.doesNotMatch(refusal?.message ?? '', /set an admin user and password/);
      await f.revision(json.rev);
      assert.equal(f.source.connected, true);
      await f.source.stop();
      for (const text of [...f.errors.map((e) => `${e.message} ${e.stack}`), ...f.lines]) assert.doesNotMatch(text, /S3cr3t-pw/);
    } finally {
      await host.stop();
    }
  });
});

/**
 * What pouchdb-server does not do but CouchDB 3 does: opaque string sequences,
 * a bare newline as heartbeat, `timeout` honoured (an empty reply), 400 to a
 * `since` it does not know (after a restore), 401 without credentials, a 409
 * when a write races another. A protocol peer, answering as CouchDB does.
 */
describe('CouchMappingSource against CouchDB 3 behaviour', () => {
  const auth = `Basic ${Buffer.from('admin:secret').toString('base64')}`;
  const state = { epoch: 1, rev: '1-a', updateSeq: '3-g1AAAAepochOne', seqs: ['3-g1AAAAepochOne', '4-g1AAAAepochOne'], sinces: [] as string[], open: 0, emptyReplies: 0, puts: [] as any[] };
  let url = '';
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(body)}\n`);
    };
    if (req.headers.authorization !== auth) return reply(401, { error: 'unauthorized', reason: 'You are not authorized to access this db.' });
    const u = new URL(req.url ?? '/', 'http://x');
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const doc = { _id: DOC, _rev: state.rev, mapping: { epoch: state.epoch } };
      if (u.pathname === '/db') return reply(200, { db_name: 'db', update_seq: state.updateSeq });
      if (u.pathname === `/db/${DOC}` && req.method === 'GET') return reply(200, doc);
      if (u.pathname === `/db/${DOC}` && req.method === 'PUT') {
        state.puts.push(JSON.parse(raw));
        return state.puts.length === 1 ? reply(409, { error: 'conflict', reason: 'Document update conflict.' }) : reply(201, { ok: true, id: DOC, rev: '6-p' });
      }
      if (u.pathname !== '/db/_changes') return reply(404, { error: 'not_found', reason: 'missing' });
      const since = u.searchParams.get('since') ?? '';
      state.sinces.push(since);
      assert.deepEqual([u.searchParams.get('filter'), JSON.parse(raw).doc_ids, u.searchParams.get('include_docs')], ['_doc_ids', [DOC], 'true']);
      if (!state.seqs.includes(since)) return reply(400, { error: 'bad_request', reason: "Malformed sequence supplied in 'since' parameter." });
      res.writeHead(200, { 'content-type': 'application/json' });
      const beat = setInterval(() => res.write('\n'), Number(u.searchParams.get('heartbeat')));
      res.write('\n');
      const first = since === '3-g1AAAAepochOne';
      const end = setTimeout(
        () => {
          clearInterval(beat);
          if (first) state.rev = '2-b';
          const results = first ? [{ seq: '4-g1AAAAepochOne', id: DOC, changes: [{ rev: '2-b' }], doc: { ...doc, _rev: '2-b' } }] : [];
          if (!first) state.emptyReplies++;
          res.end(`${JSON.stringify({ results, last_seq: first ? '4-g1AAAAepochOne' : since })}\n`);
        },
        first ? 150 : Number(u.searchParams.get('timeout')),
      );
      state.open++;
      res.on('close', () => (state.open--, clearInterval(beat), clearTimeout(end)));
    });
  });
  before(async () => {
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => http.close(() => resolve())));

  test('opaque sequences, heartbeats, timeouts, a 400 since after a restore, and no handles left', async () => {
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const f = follow({ url: url.replace('//', '//admin:secret@'), db: 'db', heartbeatMs: 50, timeoutMs: 300 });
    await f.revision('1-a');
    await f.revision('2-b');
    await f.until('a poll ended by timeout', () => state.emptyReplies >= 1);
    assert.equal(f.source.connected, true);
    assert.deepEqual(f.errors, []);

    // A restore: the old sequences mean nothing now.
    state.epoch = 2;
    state.rev = '5-r';
    state.seqs = ['1-g1AAAAepochTwo'];
    state.updateSeq = '1-g1AAAAepochTwo';
    await f.revision('5-r');
    await f.until('a poll from the new sequence', () => state.sinces.at(-1) === '1-g1AAAAepochTwo');
    assert.deepEqual(f.errors.map((e) => (e as { statusCode?: number }).statusCode), [400]);
    assert.ok(f.lines.some((l) => l.includes('rejected the saved sequence')));
    assert.deepEqual(state.sinces.slice(0, 2), ['3-g1AAAAepochOne', '4-g1AAAAepochOne'], 'sequences sent back verbatim');
    assert.deepEqual(f.updates.map((u) => u.revision), ['1-a', '2-b', '5-r']);

    await f.source.stop();
    await f.until('the aborted poll closed at the stub', () => state.open === 0);
    assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, timersBefore, 'stop() leaves no timer');
  });

  test('401 without credentials, and a 409 on put retried once with a fresh _rev', async () => {
    const anonymous = follow({ url, db: 'db' });
    await anonymous.until('a refusal', () => anonymous.errors.length >= 1);
    await anonymous.source.stop();
    assert.match(anonymous.errors[0]?.message ?? '', /^CouchDB refused the credentials \(none given\)/);
    assert.equal(anonymous.source.connected, false);

    const writer = new CouchMappingSource({ url: url.replace('//', '//admin:secret@'), db: 'db', docId: DOC, logger: pino({ level: 'silent' }) });
    state.puts = [];
    assert.equal(await writer.put({ mapping: { x: 1 } }), '6-p');
    assert.deepEqual(state.puts.map((p) => [p._id, p._rev]), [
      [DOC, state.rev],
      [DOC, state.rev],
    ]);
  });
});
