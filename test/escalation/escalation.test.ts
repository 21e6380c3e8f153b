/**
 * Escalation end to end: a whole hub (routing, the escalator, the matrix and
 * email workers, the matrix watcher) against the real Redis, the
 * spec-checking fake homeserver (with /sync and receipts) and a real SMTP
 * server. People read, react and reply through the homeserver as their
 * clients would; what is asserted is what they and operators see: the
 * reminder emails (how many, when, what they say), `hub status`, /metrics.
 * Durations are short: they are the mapping's, not constants. When a reminder
 * fired is checked against the schedule Redis recorded (the routing time, the
 * `escalated` events), never against the test's clock; an acknowledgement that
 * must come before a due time gets a due time far enough away.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { HubConfigInput } from '../../core/config/schema.ts';
import { fromPairs } from '../../core/redis/fields.ts';
import { type MessageStatus, messageStatus } from '../../core/status/message.ts';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { type ReceivedMail, type TestSmtpServer, startSmtpServer } from '../servers/smtp.ts';
import { type MatrixBot, type PrefixedHub, httpGet, matrixEnv, settled, startHubOnPrefix } from '../support/e2e.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

const enc = encodeURIComponent;

describe('escalation: unread in Matrix, then nag by email', () => {
  let hs: Homeserver;
  let smtp: TestSmtpServer;
  let bot: MatrixBot;
  let alice: MatrixBot;
  let bob: MatrixBot;
  let redis: Redis;
  const hubs: TestHub[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  let n = 0;

  const env = () => ({ ...matrixEnv(hs, bot), SMTP_URL: smtp.url(), EMAIL_FROM: 'Notification hub <hub@example.org>' });
  const config = (): HubConfigInput => ({ logLevel: 'info', channels: { email: { tlsCa: smtp.ca }, matrix: { syncTimeoutMs: 5000, syncLeaseMs: 8000 } } });
  /** An address of its own per test: the SMTP server is shared. */
  const address = (who = 'oncall') => `${who}-${++n}@example.org`;
  const mailsTo = (addr: string): ReceivedMail[] => smtp.messages.filter((m) => m.envelope.to.includes(addr));

  async function hub(mapping: unknown): Promise<TestHub> {
    const h = await startTestHub({ name: 'esc', mapping, env: env(), config: config(), start: { escalationPollMs: 50 } });
    hubs.push(h);
    return h;
  }

  async function statusOf(h: { redis: Redis; app: { cradle: { keys: import('../../core/redis/keys.ts').Keys } } }, id: string): Promise<MessageStatus> {
    const status = await messageStatus(h.redis, h.app.cradle.keys, id);
    assert.ok(status, `hub status knows ${id}`);
    return status;
  }

  /** A person's client sends a read receipt (receipts.yaml), over HTTP. */
  async function readReceipt(who: MatrixBot, roomId: string, eventId: string, type = 'm.read', body: Record<string, unknown> = {}): Promise<void> {
    const res = await fetch(`${hs.url}/_matrix/client/v3/rooms/${enc(roomId)}/receipt/${type}/${enc(eventId)}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${who.accessToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, await res.text());
  }

  async function notificationIn(h: TestHub, id: string, roomId: string): Promise<string> {
    await settled(h, id, 1);
    const peer = (await statusOf(h, id)).deliveries.find((d) => d.channel === 'matrix')?.peerId;
    assert.ok(peer && hs.messages(roomId).some((e) => e.event_id === peer && e.sender === bot.userId), 'the notification is in the room');
    return peer;
  }

  /** The rounds fired for `id`, each with the time Redis recorded it (its `escalated` event), in order. */
  async function firings(h: { redis: Redis; prefix: string }, id: string): Promise<Array<{ round: number; at: number }>> {
    const events = (await h.redis.xrange(`${h.prefix}:events`, '-', '+')) as Array<[string, string[]]>;
    return events
      .map(([eid, flat]) => ({ at: Number(eid.split('-')[0]), f: fromPairs(flat) }))
      .filter(({ f }) => f.type === 'escalated' && f.entry === id)
      .map(({ at, f }) => ({ round: Number(f.round), at }));
  }

  /** Each round fired once, none before its due time (routing + after + (round − 1) × every), none after the acknowledgement. */
  async function assertSchedule(h: { redis: Redis; prefix: string; app: TestHub['app'] }, id: string, after: number, every: number): Promise<Array<{ round: number; at: number }>> {
    const status = await statusOf(h, id);
    const routedAt = Date.parse(status.receivedAt!);
    const fired = await firings(h, id);
    assert.deepEqual(fired.map((f) => f.round), fired.map((_, i) => i + 1), 'each round fired once, in order');
    for (const { round, at } of fired) assert.ok(at >= routedAt + after + (round - 1) * every, `round ${round} fired ${at - routedAt} ms after routing, before its due time`);
    const ackAt = status.escalation?.acknowledged?.at;
    if (ackAt) for (const { round, at } of fired) assert.ok(at <= Date.parse(ackAt), `round ${round} fired after the acknowledgement`);
    return fired;
  }

  const escalationOf = async (h: TestHub, id: string, state: string, timeoutMs = 30_000) =>
    eventually(`escalation ${state}`, async () => {
      const s = await statusOf(h, id);
      return s.escalation?.state === state && s;
    }, timeoutMs);

  before(async () => {
    [hs, smtp] = await Promise.all([startHomeserver(), startSmtpServer({ user: 'hub', password: 'test-password-1' })]);
    bot = hs.registerUser('bot');
    alice = hs.registerUser('alice');
    bob = hs.registerUser('bob');
    redis = new Redis(REDIS_URL);
  });
  afterEach(async () => {
    while (hubs.length) await hubs.pop()!.stop();
    while (cleanups.length) await cleanups.pop()!();
    hs.assertNoSpecViolations();
  });
  after(async () => {
    while (hubs.length) await hubs.pop()!.stop();
    redis?.disconnect();
    await smtp?.close();
    await hs?.close(); // throws on any spec violation
  });

  test('read in time (a receipt over HTTP): no email; hub status and /metrics say so', async (t) => {
    const room = hs.createRoom(bot.userId, { members: [alice.userId] });
    const oncall = address();
    // Due in a minute: the receipt comes long before, however loaded the machine.
    const h = await hub({ '#admins': { matrix: [room], escalate: { after: '60s', email: [oncall] } } });
    const id = await h.send({ to: '#admins', subject: 'Orders API failing', body: '<b>/api/orders</b> failed' });
    const eventId = await notificationIn(h, id, room);

    const armed = await statusOf(h, id);
    assert.equal(armed.escalation?.state, 'armed');
    assert.equal(Date.parse(armed.escalation!.nextDueAt!), Date.parse(armed.receivedAt!) + 60_000, 'due a minute after routing');

    const readAt = performance.now();
    await readReceipt(alice, room, eventId);
    const done = await escalationOf(h, id, 'acknowledged');
    t.diagnostic(`receipt → escalation cancelled: ${Math.round(performance.now() - readAt)} ms`);
    assert.deepEqual({ by: done.escalation?.acknowledged?.by, how: done.escalation?.acknowledged?.how }, { by: alice.userId, how: 'read' });
    assert.deepEqual(done.acknowledged && { by: done.acknowledged.by, how: done.acknowledged.how, channel: done.acknowledged.channel }, { by: alice.userId, how: 'read', channel: 'matrix' });
    assert.equal(done.escalation?.nextDueAt, undefined);

    assert.equal((await h.redis.zscore(`${h.prefix}:escalations`, id)), null, 'nothing left in the due index: no reminder can fire');
    assert.equal(mailsTo(oncall).length, 0, 'nobody was nagged');
    assert.deepEqual(await firings(h, id), []);
    const metrics = (await httpGet(h.app.http!.port, '/metrics')).body;
    assert.match(metrics, /hub_escalations_total\{outcome="cancelled"\} 1/);
    assert.doesNotMatch(metrics, /hub_escalations_total\{outcome="sent"\}/);
    assert.ok((await h.read('events')).some((e) => e.type === 'acknowledged' && e.entry === id && e.by === alice.userId));
  });

  test('unread: exactly one email at `after`, one per `every` after that, and none once read (a receipt for a later event)', async (t) => {
    const room = hs.createRoom(bot.userId, { members: [alice.userId, bob.userId], name: 'ops' });
    const oncall = address();
    const h = await hub({ '#admins': { matrix: [room], escalate: { after: '1s', every: '2s', repeat: 5, email: [oncall] } } });
    const sentAt = performance.now();
    const id = await h.send({ to: '#admins', subject: 'Orders API failing', body: '<p><b>/api/orders</b> failed 12 times in 5 min</p>' });
    const eventId = await notificationIn(h, id, room);

    const [first] = await eventually('the first reminder', () => mailsTo(oncall).length >= 1 && mailsTo(oncall), 30_000);
    t.diagnostic(`first reminder received ${Math.round(performance.now() - sentAt)} ms after the XADD (after: 1000 ms)`);
    assert.equal(first!.parsed.subject, 'Not read after 1 second: Orders API failing');
    const text = first!.parsed.text ?? '';
    assert.match(text, /Orders API failing/);
    assert.match(text, /\/api\/orders failed 12 times in 5 min/, 'what was not read');
    assert.match(text, /sent \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/, 'when it was sent');
    assert.match(text, /reminder 1 of 6/);
    assert.ok(text.includes(`matrix ${room}`), 'where: the room');
    const link = `https://matrix.to/#/${enc(room)}/${enc(eventId)}?via=${hs.serverName}`;
    assert.ok(text.includes(link) && (first!.parsed.html || '').includes(`href="${link.replace(/&/g, '&amp;')}"`), `a matrix.to link: ${text}`);

    const [, second] = await eventually('the second reminder', () => mailsTo(oncall).length >= 2 && mailsTo(oncall), 30_000);
    t.diagnostic(`second reminder received ${Math.round(performance.now() - sentAt)} ms after the XADD (due at 3000 ms)`);
    assert.match(second!.parsed.subject ?? '', /^Still not read \(reminder 2 of 6\): Orders API failing$/);

    // Bob writes something after the notification; Alice reads up to Bob's message: that covers the notification too.
    const later = hs.post(room, bob.userId, 'm.room.message', { msgtype: 'm.text', body: 'looking' });
    await readReceipt(alice, room, later);
    const done = await escalationOf(h, id, 'acknowledged');
    assert.equal(done.escalation?.rounds, 6);
    assert.equal(done.escalation?.acknowledged?.by, alice.userId);
    assert.equal(await h.redis.zscore(`${h.prefix}:escalations`, id), null, 'nothing left in the due index: no reminder can fire');
    // The rounds that were due before the read (2, unless the read came after the third due time).
    const rounds = done.escalation!.round;
    const fired = await assertSchedule(h, id, 1000, 2000);
    assert.equal(fired.length, rounds);
    // Past the next due time, still nothing more.
    await sleep(Math.max(0, Date.parse(done.receivedAt!) + 1000 + rounds * 2000 + 500 - Date.now()));
    assert.equal((await firings(h, id)).length, rounds, 'no round fired after the read');
    assert.deepEqual(
      mailsTo(oncall).map((m) => m.parsed.subject),
      Array.from({ length: rounds }, (_, i) => (i === 0 ? 'Not read after 1 second: Orders API failing' : `Still not read (reminder ${i + 1} of 6): Orders API failing`)),
      'one email per due time, and none once read',
    );
    const reminders = (await statusOf(h, id)).deliveries.filter((d) => d.escalation !== undefined);
    assert.deepEqual(reminders.map((d) => `${d.escalation} ${d.channel} ${d.target} ${d.state}`), Array.from({ length: rounds }, (_, i) => `${i + 1} email ${oncall} sent`));
    const metrics = (await httpGet(h.app.http!.port, '/metrics')).body;
    for (const [outcome, count] of [['due', rounds], ['sent', rounds], ['cancelled', 1]] as const) {
      assert.match(metrics, new RegExp(`hub_escalations_total\\{outcome="${outcome}"\\} ${count}\\b`), outcome);
    }
  });

  test('a reaction, a reply and a reply in a thread each acknowledge their notification', async () => {
    const room = hs.createRoom(bot.userId, { members: [alice.userId] });
    const oncall = address();
    const h = await hub({ '#admins': { matrix: [room], escalate: { after: '60s', email: [oncall] } } });
    const ids = [await h.send({ to: '#admins', body: 'one', format: 'text' }), await h.send({ to: '#admins', body: 'two', format: 'text' }), await h.send({ to: '#admins', body: 'three', format: 'text' })];
    const events: string[] = [];
    for (const id of ids) events.push(await notificationIn(h, id, room));

    hs.post(room, alice.userId, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: events[0], key: '👀' } });
    hs.post(room, alice.userId, 'm.room.message', { msgtype: 'm.text', body: 'on it', 'm.relates_to': { 'm.in_reply_to': { event_id: events[1] } } });
    hs.post(room, alice.userId, 'm.room.message', {
      msgtype: 'm.text', body: 'looking', 'm.relates_to': { rel_type: 'm.thread', event_id: events[2], is_falling_back: true, 'm.in_reply_to': { event_id: events[2] } },
    });
    const hows = [];
    for (const id of ids) hows.push((await escalationOf(h, id, 'acknowledged')).escalation?.acknowledged?.how);
    assert.deepEqual(hows, ['reaction', 'reply', 'reply']);
    for (const id of ids) assert.equal(await h.redis.zscore(`${h.prefix}:escalations`, id), null, 'no reminder can fire');
    assert.equal(mailsTo(oncall).length, 0);
  });

  test('what is not a read: the bot\'s own receipt, an earlier event, another thread, someone else\'s private receipt', async () => {
    const room = hs.createRoom(bot.userId, { members: [alice.userId] });
    const oncall = address();
    const earlier = hs.post(room, alice.userId, 'm.room.message', { msgtype: 'm.text', body: 'earlier' });
    const h = await hub({ '#admins': { matrix: [room], escalate: { after: '1500ms', email: [oncall] } } });
    const id = await h.send({ to: '#admins', body: 'disk full', format: 'text' });
    const eventId = await notificationIn(h, id, room);
    const later = hs.post(room, alice.userId, 'm.room.message', { msgtype: 'm.text', body: 'later' });

    hs.receipt(room, bot.userId, eventId);
    await readReceipt(alice, room, earlier);
    await readReceipt(alice, room, later, 'm.read', { thread_id: '$someotherthreadroot' });
    await readReceipt(alice, room, eventId, 'm.read.private'); // the server shows it to Alice alone

    const done = await escalationOf(h, id, 'done');
    await eventually('the reminder', () => mailsTo(oncall).length >= 1, 30_000);
    await sleep(500);
    assert.equal(mailsTo(oncall).length, 1, 'nagged once (repeat 0)');
    assert.equal(done.escalation?.acknowledged, undefined);
    assert.deepEqual(done.escalation?.readBy, []);
  });

  test('a receipt for an event the light sync leaves out (a state event) is ordered by origin_server_ts', async () => {
    const room = hs.createRoom(bot.userId, { members: [alice.userId] });
    const oncall = address();
    const h = await hub({ '#admins': { matrix: [room], escalate: { after: '60s', email: [oncall] } } });
    const id = await h.send({ to: '#admins', body: 'cert expires', format: 'text' });
    await notificationIn(h, id, room);
    await sleep(5); // a later timestamp than the notification's
    hs.setState(room, 'm.room.topic', { topic: 'incident' }, '', alice.userId);
    const topic = hs.events(room).at(-1)!;
    assert.equal(topic.type, 'm.room.topic');
    await readReceipt(alice, room, topic.event_id);
    await escalationOf(h, id, 'acknowledged');
    assert.ok(hs.requests().some((r) => r.method === 'GET' && r.path.includes('/event/')), 'the watcher looked the event up');
  });

  test('per person: only those who did not read are nagged, and the group\'s own route stops once anyone read', async () => {
    const room = hs.createRoom(bot.userId, { members: [alice.userId, bob.userId] });
    const [oncall, aliceMail, bobMail] = [address(), address('alice'), address('bob')];
    const h = await hub({
      '#admins': {
        matrix: [room],
        escalate: {
          // Alice reads at once, Bob after his first reminder: each read comes seconds before the next due time.
          after: '4s', every: '4s', repeat: 3, email: [oncall],
          users: { [alice.userId]: { email: [aliceMail] }, [bob.userId]: { email: [bobMail] } },
        },
      },
    });
    const id = await h.send({ to: '#admins', subject: 'Backup failed', body: 'nightly backup failed', format: 'text' });
    const eventId = await notificationIn(h, id, room);
    await readReceipt(alice, room, eventId);
    await eventually('Alice\'s read recorded', async () => (await statusOf(h, id)).escalation?.readBy.length === 1, 30_000);
    const partial = (await statusOf(h, id)).escalation;
    assert.deepEqual([partial?.state, partial?.round], ['armed', 0], 'Bob has not read it, and Alice read before the first due time');

    await eventually('Bob nagged', () => mailsTo(bobMail).length === 1, 30_000);
    assert.match(mailsTo(bobMail)[0]!.parsed.text ?? '', new RegExp(`read by ${alice.userId.replace(/[.]/g, '\\.')}`));
    await readReceipt(bob, room, eventId);
    const done = await escalationOf(h, id, 'acknowledged');
    assert.equal(await h.redis.zscore(`${h.prefix}:escalations`, id), null, 'no reminder can fire');
    const fired = await assertSchedule(h, id, 4000, 4000);
    assert.deepEqual([mailsTo(oncall).length, mailsTo(aliceMail).length, mailsTo(bobMail).length], [0, 0, fired.length], 'only Bob, once per round before his read');
    assert.deepEqual(done.escalation?.readBy.map((r) => r.by).sort(), [alice.userId, bob.userId].sort());
    assert.equal(done.escalation?.round, fired.length);
  });

  describe('across processes (hubs on one prefix)', () => {
    const prefixed: PrefixedHub[] = [];
    let dir: string;
    let prefix: string;
    const start = async (mapping: unknown) => {
      writeFileSync(join(dir, 'mapping.json'), JSON.stringify({ _id: 'ccs.notifications', mapping }));
      const p = await startHubOnPrefix(prefix, { env: env(), config: { ...config(), mapping: { file: join(dir, 'mapping.json') } } });
      prefixed.push(p);
      return p;
    };
    const stop = async (p: PrefixedHub) => {
      await p.stop();
      prefixed.splice(prefixed.indexOf(p), 1);
    };
    const view = (p: PrefixedHub) => ({ redis, app: p.app, prefix, read: async (stream: string) => (await redis.xrange(`${prefix}:${stream}`, '-', '+')).map(([eid, flat]) => ({ id: eid, ...fromPairs(flat) })) });

    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'hub-esc-'));
    });
    afterEach(async () => {
      while (prefixed.length) await prefixed.pop()!.stop();
      await dropPrefix(prefix, redis);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('hub and worker restarted between send and due time: still exactly one email; the sync resumes where it stopped', async () => {
      prefix = testPrefix('esc-restart');
      const room = hs.createRoom(bot.userId, { members: [alice.userId] });
      const oncall = address();
      // Due 6 s after routing, so that the first hub is stopped well before; the second round 20 s later.
      const mapping = { '#admins': { matrix: [room], escalate: { after: '6s', every: '20s', repeat: 1, email: [oncall] } } };
      const first = await start(mapping);
      const id = (await redis.xadd(`${prefix}:in`, '*', 'to', '#admins', 'subject', 'Queue stuck', 'body', 'jobs waiting')) as string;
      await settled(view(first) as unknown as TestHub, id, 1);
      const token = await eventually("a saved sync position", async () => (await redis.get(`${prefix}:plugin:matrix:sync`)) ?? undefined);
      await stop(first);
      const armed = await statusOf({ redis, app: first.app }, id);
      assert.deepEqual([armed.escalation?.state, armed.escalation?.round], ['armed', 0], 'the first hub stopped before the due time');

      await sleep(Math.max(0, Date.parse(armed.escalation!.nextDueAt!) + 500 - Date.now()));
      assert.equal(mailsTo(oncall).length, 0, 'nothing fires while no hub runs');
      const requestsBefore = hs.requests().length;
      const second = await start(mapping);
      await eventually('the reminder after the restart', () => mailsTo(oncall).length >= 1, 30_000);
      // The watcher's sync (its filter asks for reactions), not the sender's own loop for rooms' encryption.
      const watcherSync = (r: { path: string; query?: string }) => r.path.endsWith('/sync') && !!new URLSearchParams(r.query).get('filter')?.includes('m.reaction');
      const firstSync = await eventually('a sync by the restarted worker', () => hs.requests().slice(requestsBefore).find(watcherSync));
      assert.ok(new URLSearchParams(firstSync.query).get('since') !== null, 'it synced from a saved position');
      assert.ok(Number(new URLSearchParams(firstSync.query).get('since')!.slice(1)) >= Number(token.slice(1)));

      const eventId = (await statusOf({ redis, app: second.app }, id)).deliveries[0]!.peerId!;
      await readReceipt(alice, room, eventId);
      const done = await escalationOf(view(second) as unknown as TestHub, id, 'acknowledged');
      assert.equal(await redis.zscore(`${prefix}:escalations`, id), null, 'no reminder can fire');
      const fired = await assertSchedule({ redis, prefix, app: second.app }, id, 6000, 20_000);
      assert.deepEqual(fired.map((f) => f.round), [1], 'the round missed while no hub ran fired once');
      assert.equal(mailsTo(oncall).length, 1, 'exactly one email');
      assert.equal(done.escalation?.round, 1);
    });

    test('two hubs with workers on one Redis: one email per due time', async () => {
      prefix = testPrefix('esc-two');
      const room = hs.createRoom(bot.userId, { members: [alice.userId] });
      const oncall = address();
      const mapping = { '#admins': { matrix: [room], escalate: { after: '1s', every: '1s', repeat: 2, email: [oncall] } } };
      const [a, b] = [await start(mapping), await start(mapping)];
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await redis.xadd(`${prefix}:in`, '*', 'to', '#admins', 'subject', `Alert ${i}`, 'body', 'unread')) as string);
      await eventually('every round of every message', () => mailsTo(oncall).length >= 15, 60_000);
      for (const id of ids) await eventually('the escalation done', async () => (await statusOf({ redis, app: a.app }, id)).escalation?.state === 'done', 30_000);
      await sleep(1500);
      const subjects = mailsTo(oncall).map((m) => m.parsed.subject).sort();
      assert.equal(subjects.length, 15, 'five messages × three rounds, once each');
      assert.equal(new Set(subjects).size, 15);
      assert.equal(new Set(mailsTo(oncall).map((m) => m.parsed.messageId)).size, 15);
      for (const id of ids) assert.equal((await statusOf({ redis, app: a.app }, id)).escalation?.state, 'done');
      const count = async (p: PrefixedHub, outcome: string) => Number(/ (\d+)$/m.exec((await httpGet(p.app.http!.port, '/metrics')).body.split('\n').find((l) => l.startsWith(`hub_escalations_total{outcome="${outcome}"}`)) ?? ' 0')?.[1] ?? 0);
      assert.equal((await count(a, 'sent')) + (await count(b, 'sent')), 15, 'the two processes fired 15 rounds between them');
    });
  });
});
