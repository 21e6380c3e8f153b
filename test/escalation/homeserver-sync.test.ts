/**
 * The fake homeserver's /sync (sync.yaml), receipts (receipts.yaml) and
 * single events (rooms.yaml): that it behaves as the spec describes, since
 * the escalation tests rely on it. Every answer is checked against the
 * spec's schemas by the server itself (`assertNoSpecViolations`).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, test } from 'node:test';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';

type Json = Record<string, any>;
const enc = encodeURIComponent;
const v3 = (path: string) => `/_matrix/client/v3${path}`;

describe('fake homeserver: /sync, receipts, events', () => {
  let hs: Homeserver;
  let bot: { userId: string; accessToken: string };
  let alice: { userId: string; accessToken: string };

  async function call(method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; json: Json }> {
    const res = await fetch(`${hs.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${opts.token ?? bot.accessToken}`, 'Content-Type': 'application/json' },
      ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
    });
    return { status: res.status, json: (await res.json()) as Json };
  }
  const sync = (params: Record<string, string | object>, token?: string) => {
    const query = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
    return call('GET', v3(`/sync?${query}`), token ? { token } : {});
  };

  before(async () => {
    hs = await startHomeserver();
    bot = hs.registerUser('bot');
    alice = hs.registerUser('alice');
  });
  afterEach(() => hs.assertNoSpecViolations());
  after(() => hs.close());

  test('initial sync: joined rooms with the filtered, limited timeline, current receipts and invites', async () => {
    const room = hs.createRoom(bot.userId, { members: [alice.userId] });
    const elsewhere = hs.createRoom(alice.userId, { invited: [bot.userId] });
    const ids = Array.from({ length: 4 }, (_, i) => hs.post(room, alice.userId, 'm.room.message', { msgtype: 'm.text', body: `m${i}` }));
    hs.post(room, alice.userId, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: ids[0], key: '👍' } });
    hs.receipt(room, alice.userId, ids[1]!);
    hs.receipt(room, alice.userId, ids[2]!, 'm.read.private');
    const filter = { room: { timeline: { limit: 3, types: ['m.room.message'] }, state: { not_types: ['*'] }, ephemeral: { types: ['m.receipt'] } } };
    const { status, json } = await sync({ filter });
    assert.equal(status, 200);
    assert.match(json.next_batch, /^s\d+$/);
    const joined = json.rooms.join[room];
    assert.deepEqual(joined.timeline.events.map((e: Json) => e.content.body), ['m1', 'm2', 'm3'], 'the last 3 messages, the reaction filtered out');
    assert.equal(joined.timeline.limited, true);
    assert.ok(joined.timeline.prev_batch);
    assert.deepEqual(joined.state.events, []);
    assert.deepEqual(joined.ephemeral.events, [{ type: 'm.receipt', content: { [ids[1]!]: { 'm.read': { [alice.userId]: { ts: joined.ephemeral.events[0].content[ids[1]!]['m.read'][alice.userId].ts } } } } }],
      'Alice\'s public receipt only: her private one is hers');
    assert.ok(json.rooms.invite[elsewhere].invite_state.events.some((e: Json) => e.type === 'm.room.member' && e.state_key === bot.userId));

    const own = await sync({ filter }, alice.accessToken);
    assert.deepEqual(Object.keys(own.json.rooms.join[room].ephemeral.events[0].content[ids[2]!]), ['m.read.private'], 'Alice sees her private receipt');
  });

  test('incremental sync: long polls until something happens, then answers only what is new', async () => {
    const room = hs.createRoom(bot.userId, { members: [alice.userId] });
    const first = await sync({ filter: { room: { rooms: [room] } } });
    const since = first.json.next_batch as string;

    // Held, not answered at once: a 250 ms timer started before the request fires first (one event loop serves both).
    const quietly = sync({ since, timeout: '300', filter: { room: { rooms: [room] } } });
    assert.equal(await Promise.race([quietly.then(() => 'answered'), sleep(250).then(() => 'still held')]), 'still held', 'waited for the timeout');
    const quiet = await quietly;
    assert.equal(quiet.json.rooms, undefined, 'nothing new');
    assert.equal(quiet.json.next_batch, since);

    // A long poll of two minutes, answered when the event arrives rather than at its timeout.
    const pending = sync({ since, timeout: '120000', filter: { room: { rooms: [room] } } });
    await new Promise((r) => setTimeout(r, 100));
    const eventId = hs.post(room, alice.userId, 'm.room.message', { msgtype: 'm.text', body: 'new' });
    const news = await Promise.race([pending, sleep(60_000, undefined, { ref: false }).then(() => assert.fail('the long poll was not answered when something happened'))]);
    assert.deepEqual(news.json.rooms.join[room].timeline.events.map((e: Json) => e.event_id), [eventId]);
    assert.equal(news.json.rooms.join[room].timeline.limited, false);

    const read = await call('POST', v3(`/rooms/${enc(room)}/receipt/m.read/${enc(eventId)}`), { token: alice.accessToken, body: {} });
    assert.deepEqual([read.status, read.json], [200, {}]);
    const receipts = await sync({ since: news.json.next_batch, timeout: '5000', filter: { room: { rooms: [room] } } });
    const joined = receipts.json.rooms.join[room];
    assert.deepEqual(joined.timeline.events, []);
    assert.deepEqual(Object.keys(joined.ephemeral.events[0].content[eventId]['m.read']), [alice.userId]);
  });

  test('event_fields keeps the requested fields (and the ones every event must have); the sender\'s own device gets its transaction id', async () => {
    const room = hs.createRoom(bot.userId, { members: [alice.userId] });
    const sent = await call('PUT', v3(`/rooms/${enc(room)}/send/m.room.message/txn-1`), { body: { msgtype: 'm.text', body: 'secret body' } });
    hs.post(room, alice.userId, 'm.room.message', { msgtype: 'm.text', body: 'hi', 'm.relates_to': { 'm.in_reply_to': { event_id: sent.json.event_id } } });
    const full = await sync({ filter: { room: { rooms: [room], timeline: { types: ['m.room.message'] } } } });
    assert.equal(full.json.rooms.join[room].timeline.events[0].unsigned.transaction_id, 'txn-1');
    const light = await sync({ filter: { event_fields: ['type', 'event_id', 'sender', 'content.m\\.relates_to'], room: { rooms: [room], timeline: { types: ['m.room.message'] } } } });
    const [mine, reply] = light.json.rooms.join[room].timeline.events;
    assert.deepEqual(mine.content, {}, 'no body');
    assert.deepEqual(reply.content, { 'm.relates_to': { 'm.in_reply_to': { event_id: sent.json.event_id } } });
    assert.ok(typeof reply.origin_server_ts === 'number');
  });

  test('receipts: m.fully_read is a marker, not a receipt; unknown events, bad thread ids and non-members are refused', async () => {
    const room = hs.createRoom(bot.userId, { members: [alice.userId] });
    const eventId = hs.post(room, alice.userId, 'm.room.message', { msgtype: 'm.text', body: 'x' });
    const post = (type: string, id: string, body: object, token = alice.accessToken) => call('POST', v3(`/rooms/${enc(room)}/receipt/${type}/${enc(id)}`), { token, body });
    assert.equal((await post('m.fully_read', eventId, {})).status, 200);
    assert.deepEqual(hs.receipts(room), [], 'a read marker is not a receipt');
    assert.equal((await post('m.read', '$nope', {})).status, 404);
    assert.deepEqual([(await post('m.read', eventId, { thread_id: '' })).json.errcode, (await post('m.fully_read', eventId, { thread_id: 'main' })).json.errcode], ['M_INVALID_PARAM', 'M_INVALID_PARAM']);
    const stranger = hs.registerUser('stranger');
    assert.equal((await post('m.read', eventId, {}, stranger.accessToken)).status, 403);
    assert.equal((await post('m.read', eventId, { thread_id: 'main' })).status, 200);
    assert.deepEqual(hs.receipts(room).map((r) => [r.userId, r.type, r.eventId, r.threadId]), [[alice.userId, 'm.read', eventId, 'main']]);
  });

  test('GET /rooms/{roomId}/event/{eventId}: the whole event to a member, 404 otherwise', async () => {
    const room = hs.createRoom(bot.userId, { members: [alice.userId] });
    const eventId = hs.post(room, alice.userId, 'm.room.message', { msgtype: 'm.text', body: 'x' });
    const found = await call('GET', v3(`/rooms/${enc(room)}/event/${enc(eventId)}`));
    assert.equal(found.status, 200);
    assert.equal(found.json.room_id, room);
    assert.equal(found.json.sender, alice.userId);
    assert.equal((await call('GET', v3(`/rooms/${enc(room)}/event/${enc('$missing')}`))).status, 404);
    const stranger = hs.registerUser('stranger2');
    assert.equal((await call('GET', v3(`/rooms/${enc(room)}/event/${enc(eventId)}`), { token: stranger.accessToken })).status, 404);
  });

  test('a filter id (no filter API here), a bad since token and filter typos are refused or reported', async () => {
    assert.deepEqual([(await sync({ filter: '66696p746572' })).status, (await sync({ since: 'garbage' })).status], [400, 400]);
    await sync({ filter: { room: { timline: {} } } });
    assert.deepEqual(hs.takeSpecViolations().map((v) => v.replace(/^.*: /, '')), ['filter.room has an unknown key "timline"']);
  });
});
