/**
 * Repeats become digests, through a whole hub and the channels' own peers:
 * the first message of a key goes out at once, the repeats within the window
 * are held, and when the window closes one digest reaches every target, in
 * each channel's own form, in its place in the target's order. A window that
 * held nothing sends nothing; `hub status` and the events say where each held
 * message went; a new mapping revision changes the next window, never strands
 * an open one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { messageStatus } from '../../core/status/message.ts';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { SLACK_TEST_TOKEN, type SlackTestServer, startSlackServer } from '../servers/slack/server.ts';
import { type TestSmtpServer, startSmtpServer } from '../servers/smtp.ts';
import { type XTestServer, startXServer } from '../servers/twitter/server.ts';
import { type MatrixBot, httpGet, peerEnv, runCli } from '../support/e2e.ts';
import { REDIS_URL } from '../support/redis.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';

describe('throttle: repeats become digests', () => {
  let hs: Homeserver;
  let bot: MatrixBot;
  let smtp: TestSmtpServer;
  let slack: SlackTestServer;
  let x: XTestServer;
  const hubs: TestHub[] = [];

  before(async () => {
    [hs, smtp, slack, x] = await Promise.all([startHomeserver(), startSmtpServer(), startSlackServer(), startXServer()]);
    bot = hs.registerUser('bot');
  });

  after(async () => {
    while (hubs.length) await hubs.pop()!.stop();
    await Promise.all([smtp?.close(), slack?.close(), x?.close()]);
    assert.deepEqual(slack?.violations, [], 'Slack spec');
    assert.deepEqual(x?.violations, [], 'X spec');
    await hs?.close();
  });

  async function hubWith(mapping: unknown): Promise<TestHub> {
    const hub = await startTestHub({
      name: 'digest',
      env: peerEnv({ matrix: { hs, bot }, smtp, slack: { url: slack.url, token: SLACK_TEST_TOKEN }, x }),
      mapping,
      config: { channels: { email: { tlsCa: smtp.ca } } },
      start: { digestPollMs: 50 },
    });
    hubs.push(hub);
    return hub;
  }

  /** Nothing waiting to be routed or delivered (the streams are trimmed as entries settle). */
  const idle = (hub: TestHub) =>
    eventually('nothing left to route or deliver', async () => {
      const lengths = await Promise.all(['in', 'deliver:matrix', 'deliver:email', 'deliver:slack', 'deliver:twitter'].map((s) => hub.redis.xlen(`${hub.prefix}:${s}`)));
      return lengths.every((n) => n === 0);
    });
  /** XADD in one MULTI: the hub reads them in one batch, routed at one time, however slow a loaded machine is. */
  async function sendAll(hub: TestHub, entries: Array<Record<string, string>>): Promise<string[]> {
    const multi = hub.redis.multi();
    for (const fields of entries) multi.xadd(`${hub.prefix}:in`, '*', ...Object.entries(fields).flat());
    return ((await multi.exec()) ?? []).map(([err, id]) => {
      if (err) throw err;
      return id as string;
    });
  }
  const events = async (hub: TestHub, type: string) => (await hub.read('events')).filter((e) => e.type === type);

  test('the first goes out at once, twelve repeats become one digest in every channel, in its place; an empty window sends nothing', async () => {
    const room = hs.createRoom(bot.userId, { name: 'admins' });
    const hub = await hubWith({
      '#admins': { matrix: [room], email: ['oncall@example.org'], slack: ['#ops'], twitter: ['post'], throttle: { window: '2s' } },
    });
    const storm = (n: number) => ({ to: '#admins', key: 'orders-api:5xx', subject: 'Orders API failing', body: `<p><b>/api/orders</b> failed (${n})</p>` });
    const [first, ...rest] = await sendAll(hub, [
      storm(0),
      ...Array.from({ length: 12 }, (_, i) => storm(i + 1)),
      { to: '#admins', subject: 'Backup done', body: 'no key: never held', format: 'text' },
      { to: '#admins', key: 'disk:db1', subject: 'Disk 91 %', body: 'db1', format: 'text' },
    ]);
    const held = rest.slice(0, 12);
    const [other, otherKey] = rest.slice(12) as [string, string];

    const [digest] = await eventually('the digest event', async () => {
      const d = await events(hub, 'digest');
      return d.length > 0 && d;
    });
    await idle(hub);
    await eventually('every throttle window closed', async () => (await hub.redis.zcard(`${hub.prefix}:digests`)) === 0, 15_000);
    await eventually('the digest in the room', () => hs.messages(room).length === 4);

    // Matrix: the count leads the first line, the latest message follows in full; the digest comes after what was sent before it closed.
    const bodies = hs.messages(room).map((e) => String(e.content.body));
    assert.deepEqual(bodies.map((b) => b.split('\n')[0]), ['Orders API failing', 'Backup done', 'Disk 91 %', '12 more: Orders API failing']);
    const digestText = bodies[3]!;
    assert.match(digestText, /12 more to #admins with key orders-api:5xx, from \d{4}-\d\d-\d\d [\d:]+ UTC to \d{4}-\d\d-\d\d [\d:]+ UTC/);
    assert.match(digestText, /\n\nThe latest, at [^\n]+ UTC:\n\n> Orders API failing\n> \n> \/api\/orders failed \(12\)$/);
    assert.doesNotMatch(digestText, /failed \(11\)/);
    assert.match(String(hs.messages(room)[3]!.content.formatted_body), /<b>\/api\/orders<\/b> failed \(12\)/);

    // Email: the subject says how many more; Slack: the same bold first line; X: the post, cut as usual.
    assert.deepEqual(smtp.messages.map((m) => m.parsed.subject), ['Orders API failing', 'Backup done', 'Disk 91 %', '12 more: Orders API failing']);
    assert.match(String(smtp.messages[3]!.parsed.text), /failed \(12\)/);
    const slackDigest = String(slack.messages.at(-1)?.text);
    assert.match(slackDigest, /^\*12 more: Orders API failing\*/);
    assert.match(slackDigest, /\*\/api\/orders\* failed \(12\)/);
    assert.equal(slack.messages.length, 4);
    assert.match(x.posts.at(-1)!.text, /^12 more: Orders API failing\n12 more to #admins/);
    assert.ok([...x.posts.at(-1)!.text].length <= 280);

    // The events: twelve folded, one digest; the other key's window held nothing and sent nothing.
    const folded = await events(hub, 'folded');
    assert.deepEqual(folded.map((f) => f.entry), held);
    assert.ok(folded.every((f) => f.digest === digest!.entry && f.group === '#admins' && f.key === 'orders-api:5xx'));
    assert.equal(digest!.count, '12');
    assert.equal(digest!.deliveries, '4');
    assert.equal((await events(hub, 'digest')).length, 1);

    // hub status: a held message names its digest; the digest its window; the first message was not held.
    const heldStatus = await messageStatus(hub.redis, hub.app.cradle.keys, held[4]!);
    assert.equal(heldStatus?.deliveries.length, 0);
    assert.deepEqual(heldStatus?.heldIn?.map((d) => `${d.id} ${d.group} ${d.key} ${d.state} ${d.held}`), [`${digest!.entry} #admins orders-api:5xx sent 12`]);
    const digestStatus = await messageStatus(hub.redis, hub.app.cradle.keys, digest!.entry!);
    assert.equal(digestStatus?.subject, '12 more: Orders API failing');
    assert.deepEqual(digestStatus?.deliveries.map((d) => `${d.channel} ${d.state}`).sort(), ['email sent', 'matrix sent', 'slack sent', 'twitter sent']);
    assert.equal(digestStatus?.digest?.held, 12);
    for (const id of [first!, other, otherKey]) assert.equal((await messageStatus(hub.redis, hub.app.cradle.keys, id))?.heldIn, undefined);

    const metrics = (await httpGet(hub.app.http!.port, '/metrics')).body;
    assert.match(metrics, /^hub_messages_held_total 12$/m);
    assert.match(metrics, /^hub_digests_total\{outcome="sent"\} 1$/m);
    assert.match(metrics, /^hub_digests_total\{outcome="empty"\} 1$/m);
    assert.match(metrics, /^hub_throttle_windows 0$/m);
  });

  test('a group without throttle, a message without key, and a target also reached unthrottled: never held', async () => {
    const shared = hs.createRoom(bot.userId, { name: 'shared' });
    const quiet = hs.createRoom(bot.userId, { name: 'quiet' });
    const hub = await hubWith({
      '#quiet': { matrix: [quiet, shared], throttle: { window: '30s' } },
      '#loud': { matrix: [shared] },
    });
    for (let n = 0; n < 3; n++) await hub.send({ to: '#quiet,#loud', key: 'k', body: `both ${n}`, format: 'text' });
    for (let n = 0; n < 2; n++) await hub.send({ to: '#loud', key: 'k', body: `loud ${n}`, format: 'text' });
    for (let n = 0; n < 2; n++) await hub.send({ to: '#quiet', body: `no key ${n}`, format: 'text' });
    await eventually('the messages in the rooms', () => hs.messages(shared).length === 7 && hs.messages(quiet).length === 3);
    assert.deepEqual(hs.messages(quiet).map((e) => e.content.body), ['both 0', 'no key 0', 'no key 1']);
    assert.deepEqual(hs.messages(shared).map((e) => e.content.body), ['both 0', 'both 1', 'both 2', 'loud 0', 'loud 1', 'no key 0', 'no key 1']);
    assert.equal((await events(hub, 'folded')).length, 2, 'held for #quiet only');
    const windows = await hub.redis.zrange(`${hub.prefix}:digests`, 0, -1);
    assert.equal(windows.length, 1, 'one window open: #quiet k');

    // The command line: the open window in `hub status`, and a held message's digest in `hub status <id>`.
    const env = { REDIS_URL, HUB_PREFIX: hub.prefix, MAPPING_FILE: hub.mappingFile };
    const heldId = (await events(hub, 'folded'))[1]!.entry!;
    const [overview, held] = await Promise.all([runCli(['status'], env), runCli(['status', heldId], env)]);
    assert.equal(overview.code, 0, overview.stderr);
    assert.match(overview.stdout, new RegExp(`^throttle   1 open window\\(s\\):\n  ${windows[0]} of #quiet key "k": 2 held, window closes \\d{4}-`, 'm'));
    assert.equal(held.code, 0, held.stderr);
    assert.match(held.stdout, new RegExp(`^  sent +matrix ${shared.replace(/[.$]/g, '\\$&')}`, 'm'), 'sent to the room #loud reaches');
    assert.match(held.stdout, new RegExp(`^held in  ${windows[0]} of #quiet key "k": 2 held, window closes `, 'm'));
  });

  test('a throttled group that escalates: the first message arms its escalation, a repeat held for the digest arms none', async () => {
    const pager = hs.createRoom(bot.userId, { name: 'pager' });
    const ops = hs.createRoom(bot.userId, { name: 'ops' });
    const hub = await hubWith({
      '#pager': { matrix: [pager], throttle: { window: '30s' }, escalate: { after: '1h', email: ['oncall@example.org'] } },
      '#ops': { matrix: [ops] },
    });
    const first = await hub.send({ to: '#pager,#ops', key: 'disk', body: 'disk full', format: 'text' });
    await eventually('the first in both rooms', () => hs.messages(pager).length === 1 && hs.messages(ops).length === 1);
    const repeat = await hub.send({ to: '#pager,#ops', key: 'disk', body: 'disk still full', format: 'text' });
    await eventually('the repeat in #ops, held for #pager', async () => hs.messages(ops).length === 2 && (await events(hub, 'folded')).some((e) => e.entry === repeat));
    const armed = await hub.redis.zrange(`${hub.prefix}:escalations`, 0, -1);
    assert.deepEqual(armed, [first], 'only the message #pager saw escalates');
  });

  test('a new revision changes the next window; removing throttle never strands the messages an open window holds', async () => {
    const room = hs.createRoom(bot.userId, { name: 'revisions' });
    const hub = await hubWith({ '#a': { matrix: [room], throttle: { window: '5s' } } });
    const send = (body: string) => hub.send({ to: '#a', key: 'k', body, format: 'text' });
    await send('one');
    await eventually('the first', () => hs.messages(room).length === 1);
    await sendAll(hub, ['two', 'three'].map((body) => ({ to: '#a', key: 'k', body, format: 'text' })));
    const [window] = await hub.redis.zrange(`${hub.prefix}:digests`, 0, -1);
    assert.ok(window);
    // Throttle removed while the window holds two: the next messages go out at once, the window still closes and sends.
    const revision = hub.app.cradle.mappingStore.current!.revision;
    hub.writeMapping({ '#a': { matrix: [room] } });
    await eventually('the new revision in force', () => hub.app.cradle.mappingStore.current!.revision !== revision);
    await send('four');
    await eventually('four at once, then the digest of two and three', () => hs.messages(room).length === 3, 15_000);
    // (Which of the two comes first depends on whether the window closed before the revision was in force.)
    const lines = hs.messages(room).map((e) => String(e.content.body).split('\n')[0]);
    assert.deepEqual([lines[0], ...lines.slice(1).sort()], ['one', '2 more: three', 'four']);
    assert.equal((await events(hub, 'digest')).length, 1);
    assert.equal((await hub.redis.zcard(`${hub.prefix}:digests`)), 0);

    // Throttle back, with another window length: it applies to the window that opens next.
    hub.writeMapping({ '#a': { matrix: [room], throttle: { window: '1s' } } });
    await eventually('the throttle back in force', () => hub.app.cradle.mappingStore.current!.groups.get('#a')!.throttle?.windowMs === 1000);
    await sendAll(hub, ['five', 'six'].map((body) => ({ to: '#a', key: 'k', body, format: 'text' })));
    // The window six is held in (its record outlives the window, which may close before this reads it).
    const folded = await eventually('six held', async () => {
      const held = await events(hub, 'folded');
      return held.length === 3 && held;
    });
    assert.equal(await hub.redis.hget(`${hub.prefix}:digest:${folded[2]!.digest}`, 'windowMs'), '1000');
    await eventually('five, then the digest of six', () => hs.messages(room).length === 5, 15_000);
    assert.deepEqual(hs.messages(room).slice(3).map((e) => String(e.content.body).split('\n')[0]), ['five', '1 more: six']);
  });
});
