/**
 * End to end through the matrix channel: a whole hub (routing and workers)
 * against the real Redis and the spec-checking fake homeserver, fed by XADD
 * like any producer. What is asserted is what people and operators see: the
 * events in the rooms, the outcome events, `hub status`, the dead letters.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { messageStatus } from '../../core/status/message.ts';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { type TestWebhookServer, startWebhookServer } from '../servers/webhook.ts';
import { type MatrixBot, idle, matrixEnv, sendsTo, settled } from '../support/e2e.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import type { HubConfigInput } from '../../core/config/schema.ts';

describe('matrix end to end: XADD → hub → worker → homeserver', () => {
  let hs: Homeserver;
  let bot: MatrixBot;
  let alice: string;
  let webhook: TestWebhookServer;
  const hubs: TestHub[] = [];

  async function hub(mapping: unknown, config: HubConfigInput = {}): Promise<TestHub> {
    const h = await startTestHub({ name: 'e2e-matrix', mapping, env: matrixEnv(hs, bot), config: { logLevel: 'info', ...config } });
    hubs.push(h);
    return h;
  }

  const statusOf = async (h: TestHub, id: string) => {
    const status = await messageStatus(h.redis, h.app.cradle.keys, id);
    assert.ok(status, `hub status knows ${id}`);
    return status;
  };

  before(async () => {
    hs = await startHomeserver();
    bot = hs.registerUser('bot');
    alice = hs.registerUser('alice').userId;
    webhook = await startWebhookServer();
  });
  afterEach(async () => {
    while (hubs.length) await hubs.pop()!.stop();
    hs.rateLimit(undefined);
    hs.assertNoSpecViolations();
  });
  after(async () => {
    while (hubs.length) await hubs.pop()!.stop();
    await webhook?.close();
    await hs?.close(); // throws on any spec violation
  });

  test('a message reaches a room id, an alias and a user (as a direct room) as m.text, and no other room', async () => {
    const room = hs.createRoom(bot.userId, { name: 'ops room' });
    const aliased = hs.createRoom(bot.userId, { alias: 'oncall' });
    const elsewhere = hs.createRoom(bot.userId, { name: 'users' });
    const h = await hub({
      '#admins': { matrix: [room, `#oncall:${hs.serverName}`, alice] },
      '#users': { matrix: [elsewhere] },
    });

    const id = await h.send({ to: '#admins', subject: 'Orders API failing', body: '<p><b>/api/orders</b> failed 12 times</p>' });
    await settled(h, id, 3);

    const direct = hs.accountData(bot.userId, 'm.direct') as Record<string, string[]> | undefined;
    const dm = direct?.[alice]?.[0];
    assert.ok(dm, 'a direct room with alice is recorded in m.direct');
    assert.equal(hs.membership(dm, alice), 'invite', 'alice is invited to the direct room');
    for (const target of [room, aliased, dm]) {
      const messages = hs.messages(target);
      assert.equal(messages.length, 1, `one event in ${target}`);
      assert.equal(messages[0]!.sender, bot.userId);
      assert.deepEqual(messages[0]!.content, {
        msgtype: 'm.text',
        body: 'Orders API failing\n\n/api/orders failed 12 times',
        format: 'org.matrix.custom.html',
        formatted_body: '<b>Orders API failing</b><br /><p><b>/api/orders</b> failed 12 times</p>',
      });
    }
    assert.equal(hs.messages(elsewhere).length, 0, 'the room of another group gets nothing');
    assert.deepEqual(await h.read('dead'), []);
  });

  test('a room reached through two groups of one message gets one event', async () => {
    const shared = hs.createRoom(bot.userId);
    const adminsOnly = hs.createRoom(bot.userId);
    const h = await hub({
      '#admins': { matrix: [shared, adminsOnly] },
      '#oncall': { matrix: [shared] },
    });
    const id = await h.send({ to: '#admins,#oncall', body: 'disk full', format: 'text' });
    await settled(h, id, 2);
    await idle(h);
    assert.deepEqual(hs.messages(shared).map((e) => e.content.body), ['disk full']);
    assert.deepEqual(hs.messages(adminsOnly).map((e) => e.content.body), ['disk full']);
    const status = await statusOf(h, id);
    assert.deepEqual(status.deliveries.map((d) => d.target).sort(), [shared, adminsOnly].sort());
  });

  test('the `channels` field limits delivery to those channels', async () => {
    const room = hs.createRoom(bot.userId);
    const hook = webhook.url(`/hook-${Date.now()}`);
    const posts = () => webhook.requests.filter((r) => r.path === new URL(hook).pathname);
    const h = await hub({ '#admins': { matrix: [room], webhook: [hook] } });

    const toMatrix = await h.send({ to: '#admins', body: 'matrix only', channels: 'matrix' });
    await settled(h, toMatrix, 1);
    const toWebhook = await h.send({ to: '#admins', body: 'webhook only', channels: 'webhook' });
    await settled(h, toWebhook, 1);
    const both = await h.send({ to: '#admins', body: 'everywhere' });
    await settled(h, both, 2);
    await idle(h);

    assert.deepEqual(hs.messages(room).map((e) => e.content.body), ['matrix only', 'everywhere']);
    assert.deepEqual(posts().map((r) => (r.json as { body: string }).body), ['webhook only', 'everywhere']);
    assert.deepEqual((await statusOf(h, toMatrix)).deliveries.map((d) => d.channel), ['matrix']);
    assert.deepEqual((await statusOf(h, toWebhook)).deliveries.map((d) => d.channel), ['webhook']);
  });

  test('a second entry with the same producer `id` is not delivered again and is recorded as a duplicate', async () => {
    const room = hs.createRoom(bot.userId);
    const h = await hub({ '#admins': { matrix: [room] } });
    const first = await h.send({ to: '#admins', body: 'deploy 42 done', id: 'deploy-42' });
    await settled(h, first, 1);
    const second = await h.send({ to: '#admins', body: 'deploy 42 done', id: 'deploy-42' });
    const duplicate = await eventually('a duplicate event', async () => (await h.read('events')).find((e) => e.type === 'duplicate' && e.entry === second));
    assert.equal(duplicate.first, first);
    await idle(h);
    assert.equal(hs.messages(room).length, 1, 'one event only');
    assert.deepEqual(await h.read('dead'), [], 'a duplicate is not dead-lettered');
    assert.equal((await h.read('events')).filter((e) => e.type === 'sent').length, 1);
    // The producer's id finds the first message in `hub status`.
    assert.equal((await statusOf(h, 'deploy-42')).entry, first);
  });

  test('hub status records each delivery as sent, with the event id as the peer id', async () => {
    const room = hs.createRoom(bot.userId);
    const aliased = hs.createRoom(bot.userId, { alias: 'status' });
    const h = await hub({ '#admins': { matrix: [room, `#status:${hs.serverName}`] } });
    const id = await h.send({ to: '#admins', subject: 'Backup', body: 'finished', format: 'text' });
    await settled(h, id, 2);

    const status = await statusOf(h, id);
    assert.equal(status.entry, id);
    assert.deepEqual(status.to, ['#admins']);
    assert.equal(status.subject, 'Backup');
    assert.equal(status.revision, h.app.cradle.mappingStore.current?.revision);
    assert.deepEqual(status.deadLetters, []);
    const byTarget = new Map(status.deliveries.map((d) => [d.target, d]));
    for (const [target, roomId] of [[room, room], [`#status:${hs.serverName}`, aliased]] as const) {
      const d = byTarget.get(target);
      assert.ok(d, `a delivery to ${target}`);
      const [event] = hs.messages(roomId);
      assert.equal(d.state, 'sent');
      assert.equal(d.channel, 'matrix');
      assert.equal(d.attempts, 1);
      assert.equal(d.peerId, event?.event_id);
      assert.deepEqual(d.history?.map((x) => x.result), ['sent']);
    }
    const sent = (await h.read('events')).filter((e) => e.type === 'sent' && e.entry === id);
    assert.deepEqual(sent.map((e) => e.peer).sort(), [hs.messages(room)[0]!.event_id, hs.messages(aliased)[0]!.event_id].sort());
  });

  test('a 429 storm: everything delivered once, in order, and rate limits spend no attempts', async () => {
    const first = hs.createRoom(bot.userId);
    const second = hs.createRoom(bot.userId);
    // The floor of a rate-limited wait at its least: a dozen 429s per room, each waiting it.
    const h = await hub({ '#admins': { matrix: [first, second] } }, { delivery: { maxAttempts: 2, rateLimitFloor: 100 } });
    // Three 429s in a row for the first room (more than maxAttempts), then every 2nd send limited.
    hs.failNext(3, { status: 429, errcode: 'M_LIMIT_EXCEEDED', error: 'Too Many Requests' }, sendsTo(first));
    hs.rateLimit({ every: 2, retryAfterMs: 20, header: false });
    const limitedBefore = hs.requests().filter((r) => r.status === 429).length;

    const bodies = Array.from({ length: 12 }, (_, i) => `alert ${i + 1}`);
    const ids: string[] = [];
    for (const body of bodies) ids.push(await h.send({ to: '#admins', body, format: 'text' }));
    for (const id of ids) await settled(h, id, 2, 60_000);
    await idle(h);

    for (const room of [first, second]) {
      assert.deepEqual(hs.messages(room).map((e) => e.content.body), bodies, `every message once, in order, in ${room}`);
    }
    assert.ok(hs.requests().filter((r) => r.status === 429).length - limitedBefore >= 3 + 5, 'the homeserver did rate-limit');
    assert.deepEqual(await h.read('dead'), [], 'nothing dead-lettered');
    const events = await h.read('events');
    assert.equal(events.filter((e) => e.type === 'sent').length, 24);
    assert.equal(events.filter((e) => e.type === 'dead').length, 0);
    const firstDelivery = (await statusOf(h, ids[0]!)).deliveries.find((d) => d.target === first)!;
    assert.equal(firstDelivery.state, 'sent');
    // At least the three forced 429s (the every-2nd limit may add more), then sent: more tries than maxAttempts allows.
    const results = firstDelivery.history?.map((x) => x.result) ?? [];
    assert.equal(results.at(-1), 'sent');
    assert.ok(results.slice(0, -1).every((r) => r === 'rate limited') && results.length >= 4, results.join(', '));
  });

  test('500s from the homeserver are retried until it recovers', async () => {
    const room = hs.createRoom(bot.userId);
    const h = await hub({ '#admins': { matrix: [room] } });
    hs.failNext(3, { status: 500, errcode: 'M_UNKNOWN', error: 'Internal server error' }, sendsTo(room));
    const id = await h.send({ to: '#admins', body: 'still there?', format: 'text' });
    const [outcome] = await settled(h, id, 1);
    assert.equal(outcome!.type, 'sent');
    await idle(h);
    assert.deepEqual(hs.messages(room).map((e) => e.content.body), ['still there?']);
    const [d] = (await statusOf(h, id)).deliveries;
    assert.equal(d?.state, 'sent');
    assert.equal(d?.attempts, 4);
    assert.deepEqual(d?.history?.map((x) => x.result), ['failed', 'failed', 'failed', 'sent']);
    assert.match(d?.history?.[0]?.error ?? '', /500/);
    const retrying = (await h.read('events')).filter((e) => e.entry === id && e.type === 'retrying');
    assert.equal(retrying.length, 3);
    assert.deepEqual(await h.read('dead'), []);
  });

  test('a room the bot may not enter is dead-lettered with the reason; the other targets are delivered', async () => {
    const open = hs.createRoom(bot.userId);
    const closed = hs.createRoom(alice, { name: 'private' });
    const h = await hub({ '#admins': { matrix: [open, closed, alice] } });
    const id = await h.send({ to: '#admins', subject: 'Orders API failing', body: '<b>boom</b>' });
    const outcomes = await settled(h, id, 3);
    assert.deepEqual(outcomes.map((o) => `${o.type} ${o.target}`).sort(), [`dead ${closed}`, `sent ${alice}`, `sent ${open}`].sort());

    assert.equal(hs.messages(open).length, 1);
    assert.equal(hs.messages(closed).length, 0);
    assert.notEqual(hs.membership(closed, bot.userId), 'join');
    const [letter, ...more] = await h.read('dead');
    assert.equal(more.length, 0);
    assert.equal(letter!.stage, 'delivery');
    assert.equal(letter!.channel, 'matrix');
    assert.equal(letter!.target, closed);
    assert.equal(letter!.attempts, '1');
    assert.equal(letter!.entry, id);
    assert.match(letter!.reason!, new RegExp(`not in room ${closed.replace(/[!]/g, '\\$&')} and cannot join it: invite it`));
    assert.match(letter!.error!, /^not_in_room: .*M_FORBIDDEN/);
    // The original fields travel with it, for `hub dead replay`.
    assert.equal(letter!.to, '#admins');
    assert.equal(letter!.subject, 'Orders API failing');
    assert.equal(letter!.body, '<b>boom</b>');
    const status = await statusOf(h, id);
    assert.equal(status.deliveries.find((d) => d.target === closed)?.state, 'dead');
    assert.equal(status.deadLetters.length, 1);
  });
});
