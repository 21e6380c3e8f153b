/** The fake homeserver itself: that it behaves like one, and that its spec checks catch what they should. */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';

let hs: Homeserver;
let bot: { userId: string; accessToken: string; deviceId: string };

async function call(method: string, path: string, opts: { token?: string | null; body?: unknown; raw?: string } = {}) {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  const token = opts.token === undefined ? bot.accessToken : opts.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  const body = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const res = await fetch(`${hs.url}${path}`, { method, headers, body });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}
const v3 = (path: string) => `/_matrix/client/v3${path}`;
const enc = encodeURIComponent;

describe('fake homeserver', () => {
  before(async () => {
    hs = await startHomeserver();
    bot = hs.registerUser('bot', 'secret-pw');
    hs.registerUser('alice');
  });
  afterEach(() => hs.assertNoSpecViolations());
  after(() => hs.close());

  test('versions, login and whoami', async () => {
    assert.ok(((await call('GET', '/_matrix/client/versions', { token: null })).json.versions as string[]).includes('v1.12'));
    const login = await call('POST', v3('/login'), {
      token: null, body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bot' }, password: 'secret-pw' },
    });
    assert.equal(login.status, 200);
    assert.equal(login.json.user_id, bot.userId);
    const who = await call('GET', v3('/account/whoami'), { token: String(login.json.access_token) });
    assert.deepEqual(who.json, { user_id: bot.userId, device_id: login.json.device_id, is_guest: false });
    const wrong = await call('POST', v3('/login'), { token: null, body: { type: 'm.login.password', user: 'bot', password: 'no' } });
    assert.deepEqual([wrong.status, wrong.json.errcode], [403, 'M_FORBIDDEN']);
  });

  test('authentication: missing and unknown tokens', async () => {
    const missing = await call('GET', v3('/joined_rooms'), { token: null });
    assert.deepEqual([missing.status, missing.json.errcode], [401, 'M_MISSING_TOKEN']);
    const unknown = await call('GET', v3('/joined_rooms'), { token: 'nope' });
    assert.deepEqual([unknown.status, unknown.json.errcode], [401, 'M_UNKNOWN_TOKEN']);
    const query = await fetch(`${hs.url}${v3('/joined_rooms')}?access_token=${bot.accessToken}`);
    assert.equal(query.status, 200, 'the deprecated query parameter still works in v1.19');
  });

  test('send: membership, unknown rooms as Synapse (403), and transaction idempotency', async () => {
    const room = hs.createRoom(bot.userId);
    const content = { msgtype: 'm.text', body: 'hi' };
    const first = await call('PUT', v3(`/rooms/${enc(room)}/send/m.room.message/t1`), { body: content });
    const again = await call('PUT', v3(`/rooms/${enc(room)}/send/m.room.message/t1`), { body: content });
    assert.equal(first.json.event_id, again.json.event_id);
    assert.equal(hs.messages(room).length, 1);
    assert.equal(hs.messages(room)[0]?.txn, 't1');
    const other = hs.createRoom('@alice:hs.test');
    const forbidden = await call('PUT', v3(`/rooms/${enc(other)}/send/m.room.message/t2`), { body: content });
    assert.deepEqual([forbidden.status, forbidden.json.errcode], [403, 'M_FORBIDDEN']);
    const unknown = await call('PUT', v3(`/rooms/${enc('!nope:hs.test')}/send/m.room.message/t3`), { body: content });
    assert.deepEqual([unknown.status, unknown.json.errcode], [403, 'M_FORBIDDEN']);
  });

  test('state, join rules, invites, directory, joined members', async () => {
    const room = hs.createRoom('@alice:hs.test', { alias: 'lobby', public: true });
    const notMember = await call('GET', v3(`/rooms/${enc(room)}/state/m.room.encryption/`));
    assert.equal(notMember.status, 403);
    const dir = await call('GET', v3(`/directory/room/${enc('#lobby:hs.test')}`), { token: null });
    assert.deepEqual(dir.json, { room_id: room, servers: ['hs.test'] });
    assert.equal((await call('POST', v3(`/join/${enc('#lobby:hs.test')}`), { body: {} })).json.room_id, room);
    assert.equal((await call('GET', v3(`/rooms/${enc(room)}/state/m.room.encryption`))).status, 404);
    assert.equal((await call('GET', v3(`/rooms/${enc(room)}/state/m.room.join_rules/`))).json.join_rule, 'public');
    const members = await call('GET', v3(`/rooms/${enc(room)}/joined_members`));
    assert.deepEqual(Object.keys(members.json.joined as object).sort(), ['@alice:hs.test', bot.userId]);
    const closed = hs.createRoom('@alice:hs.test');
    assert.equal((await call('POST', v3(`/rooms/${enc(closed)}/join`), { body: {} })).status, 403);
    hs.invite(closed, bot.userId);
    assert.equal((await call('POST', v3(`/rooms/${enc(closed)}/join`), { body: {} })).status, 200);
    assert.equal(hs.membership(closed, bot.userId), 'join');
    assert.ok(((await call('GET', v3('/joined_rooms'))).json.joined_rooms as string[]).includes(closed));
  });

  test('createRoom with a direct invite, encryption and an alias; account data', async () => {
    const created = await call('POST', v3('/createRoom'), {
      body: {
        preset: 'trusted_private_chat', is_direct: true, invite: ['@alice:hs.test'], room_alias_name: 'dm',
        initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
      },
    });
    const room = String(created.json.room_id);
    assert.equal(hs.membership(room, '@alice:hs.test'), 'invite');
    assert.equal(hs.stateOf(room, 'm.room.encryption')?.algorithm, 'm.megolm.v1.aes-sha2');
    assert.equal((await call('POST', v3('/createRoom'), { body: { room_alias_name: 'dm' } })).json.errcode, 'M_ROOM_IN_USE');
    const path = v3(`/user/${enc(bot.userId)}/account_data/m.direct`);
    assert.equal((await call('GET', path)).status, 404);
    assert.equal((await call('PUT', path, { body: { '@alice:hs.test': [room] } })).status, 200);
    assert.deepEqual((await call('GET', path)).json, { '@alice:hs.test': [room] });
    assert.equal((await call('GET', v3(`/user/${enc('@alice:hs.test')}/account_data/m.direct`))).status, 403);
  });

  test('faults: failNext, timeout, rate limit with and without Retry-After, delay', async () => {
    const room = hs.createRoom(bot.userId);
    const send = (txn: string) => call('PUT', v3(`/rooms/${enc(room)}/send/m.room.message/${txn}`), { body: { msgtype: 'm.text', body: 'x' } });
    hs.failNext(1, { status: 503 }, /\/send\//);
    assert.deepEqual([(await send('f1')).status, (await send('f1')).status], [503, 200]);
    hs.rateLimit({ every: 2, retryAfterMs: 1500, header: true });
    const [a, b] = [await send('r1'), await send('r2')];
    assert.equal(a.status, 200);
    assert.deepEqual([b.status, b.json.errcode, b.json.retry_after_ms, b.headers.get('retry-after')], [429, 'M_LIMIT_EXCEEDED', 1500, '2']);
    hs.rateLimit({ every: 1, retryAfterMs: 500, header: false });
    const c = await send('r3');
    assert.deepEqual([c.status, c.json.retry_after_ms, c.headers.get('retry-after')], [429, 500, null]);
    hs.rateLimit(undefined);
    hs.failNext(1, 'timeout');
    await assert.rejects(fetch(`${hs.url}/_matrix/client/versions`, { signal: AbortSignal.timeout(100) }), { name: 'TimeoutError' });
    hs.delay(60);
    // The answer comes after a 40 ms timer started before the request (one event loop serves both): it was delayed.
    const delayed = call('GET', '/_matrix/client/versions');
    assert.equal(await Promise.race([delayed.then(() => 'answered'), new Promise((resolve) => setTimeout(resolve, 40, 'still delayed'))]), 'still delayed');
    assert.equal((await delayed).status, 200);
    hs.delay(0);
  });

  test('spec checks: unknown endpoints, wrong methods, bad bodies, bad contents are recorded', async () => {
    const room = hs.createRoom(bot.userId);
    assert.deepEqual((await call('GET', v3('/nope'))).json.errcode, 'M_UNRECOGNIZED');
    assert.equal((await call('DELETE', v3('/joined_rooms'))).status, 405);
    const bad = await call('POST', v3(`/rooms/${enc(room)}/invite`), { body: { user_id: 'alice' } });
    assert.deepEqual([bad.status, bad.json.errcode], [400, 'M_BAD_JSON']);
    assert.equal((await call('POST', v3('/createRoom'), { raw: '{oops' })).json.errcode, 'M_NOT_JSON');
    await call('PUT', v3(`/rooms/${enc(room)}/send/m.room.message/c1`), { body: { msgtype: 'm.text' } });
    await call('POST', v3(`/rooms/${enc('#alias:hs.test')}/join`), { body: {} });
    await call('PUT', v3(`/user/${enc(bot.userId)}/account_data/m.direct`), { body: { '@alice:hs.test': 'not-a-list' } });
    const found = hs.takeSpecViolations().join('\n');
    for (const expected of [
      /GET \/_matrix\/client\/v3\/nope: unknown endpoint \(404 M_UNRECOGNIZED\)/,
      /DELETE \/_matrix\/client\/v3\/joined_rooms: method not allowed/,
      /invite: request body\/user_id must match pattern "\^@"/,
      /m.room.message content: m.room.message\$m.text.yaml: body must have required property 'body'/,
      /path parameter "#alias:hs.test": roomId must match pattern "\^!"/,
      /m.direct: "@alice:hs.test" must map a user id to a list of room ids/,
    ]) assert.match(found, expected);
  });

  test('close() throws when violations are left', async () => {
    const other = await startHomeserver();
    await fetch(`${other.url}/_matrix/client/v3/unknown`);
    await assert.rejects(other.close(), /Matrix spec violations:\n- GET \/_matrix\/client\/v3\/unknown: unknown endpoint/);
  });
});
