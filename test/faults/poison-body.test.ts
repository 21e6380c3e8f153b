/**
 * Poison bodies: a message whose body no formatter can handle (63 KB of nested
 * tags, 64k `>` of markdown, lists nested on one line, a table cell spanning
 * a million columns) is a property of the message, not of any peer. Through a
 * real hub and real workers of all five channels against their local peers,
 * it is dead-lettered at its first attempt with a sentence saying why, and
 * the next message to the same targets goes right after it, in order. A body
 * that is only slow to format (`*a` × 32,000 in markdown) is delivered, with
 * the marks as typed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { SLACK_TEST_TOKEN, type SlackTestServer, startSlackServer } from '../servers/slack/server.ts';
import { type TestSmtpServer, startSmtpServer } from '../servers/smtp.ts';
import { type XTestServer, startXServer } from '../servers/twitter/server.ts';
import { type TestWebhookServer, startWebhookServer } from '../servers/webhook.ts';
import { type Outcome, peerEnv, settled } from '../support/e2e.ts';
import { type TestHub, startTestHub } from '../support/hub.ts';

const CHANNELS = ['matrix', 'email', 'slack', 'twitter', 'webhook'];

const POISON: Array<{ name: string; body: string; format: 'html' | 'markdown'; reason: RegExp }> = [
  { name: '63 KB of nested tags', body: '<div>'.repeat(12_600), format: 'html', reason: /the body nests its elements 12600 deep, more than the 100 levels the hub formats: send it flatter; every attempt would fail the same way/ },
  { name: '63 KB of nested inline tags', body: '<b>'.repeat(21_000), format: 'html', reason: /the body nests its elements 21000 deep/ },
  { name: '64k > of markdown', body: '>'.repeat(64_000), format: 'markdown', reason: /the markdown nests quotes or lists 64000 deep/ },
  { name: 'lists nested on one line', body: `${'1. '.repeat(20_000)}a`, format: 'markdown', reason: /the markdown nests quotes or lists 20000 deep/ },
  { name: 'a cell spanning a million columns', body: '<table><tr><td colspan="1000000">a</td></tr><tr><td>b</td></tr></table>', format: 'html', reason: /the body's tables span 1000001 cells/ },
];

describe('faults: poison bodies through every channel', () => {
  let hs: Homeserver;
  let smtp: TestSmtpServer;
  let slack: SlackTestServer;
  let x: XTestServer;
  let webhook: TestWebhookServer;
  let hub: TestHub;
  let room: string;
  const figures: string[] = [];

  before(async () => {
    [hs, smtp, slack, x, webhook] = await Promise.all([
      startHomeserver(),
      startSmtpServer(),
      startSlackServer(),
      startXServer(),
      startWebhookServer(),
    ]);
    const bot = hs.registerUser('bot');
    room = hs.createRoom(bot.userId, { name: 'poison' });
    hub = await startTestHub({
      name: 'poison-body',
      env: peerEnv({ matrix: { hs, bot }, smtp, slack: { url: slack.url, token: SLACK_TEST_TOKEN }, x }),
      mapping: {
        '#everyone': { matrix: [room], email: ['ops@example.org'], slack: ['#ops'], twitter: ['post'], webhook: [webhook.url('/alerts')] },
        // Routing arms the reminder with an excerpt of the body: formatted at ingress.
        '#escalated': { matrix: [room], escalate: { after: '1h', webhook: [webhook.url('/reminders')] } },
      },
      // Were a poison body retryable, its targets would wait through these attempts.
      config: { delivery: { maxAttempts: 8 }, channels: { email: { tlsCa: smtp.ca } } },
    });
  });

  after(async () => {
    await hub?.stop();
    await Promise.all([smtp?.close(), slack?.close(), x?.close(), webhook?.close()]);
    await hs?.close();
    if (figures.length) console.log(`poison bodies: ${figures.join('; ')}`);
  });

  for (const poison of POISON) {
    test(`${poison.name}: dead-lettered at its first attempt with the reason; the next message goes right after`, async () => {
      const poisonId = await hub.send({ to: '#everyone', body: poison.body, format: poison.format });
      const nextId = await hub.send({ to: '#everyone', body: `after ${poison.name}`, format: 'text' });
      const dead = await settled(hub, poisonId, CHANNELS.length, 30_000);
      const sent = await settled(hub, nextId, CHANNELS.length, 30_000);

      const events = await hub.read('events');
      const letters = (await hub.read('dead')).filter((d) => d.entry === poisonId);
      for (const channel of CHANNELS) {
        const one = (list: Outcome[]) => list.filter((e) => e.channel === channel);
        assert.deepEqual(one(dead).map((e) => [e.type, e.attempts]), [['dead', '1']], `${channel}: dead at the first attempt`);
        assert.deepEqual(one(sent).map((e) => e.type), ['sent'], `${channel}: the next message is delivered`);
        // Order of events to the one target: the poison's end, then the next message; no retry between.
        const seen = events.filter((e) => e.channel === channel && (e.entry === poisonId || e.entry === nextId)).map((e) => `${e.entry === poisonId ? 'poison' : 'next'} ${e.type}`);
        assert.deepEqual(seen, ['poison dead', 'next sent'], `${channel}: ${seen.join(', ')}`);
        const letter = letters.find((d) => d.channel === channel);
        assert.ok(letter, `${channel}: a dead letter`);
        assert.match(letter.reason ?? '', new RegExp(`^the message cannot be formatted for ${channel}: ${poison.reason.source}`));
        assert.doesNotMatch(letter.reason ?? '', /\n|\bat \w+ \(/, 'a sentence, not a stack trace');
        assert.equal(letter.body, poison.body, 'the body is kept in the dead letter, whole');
      }
      assert.ok(hs.messages(room).some((m) => m.content.body === `after ${poison.name}`));
      assert.ok(webhook.requests.some((r) => (r.json as { body?: string }).body === `after ${poison.name}`));
      assert.ok(!webhook.requests.some((r) => (r.json as { body?: string }).body === poison.body), 'the poison never reached a peer');
      // From the poison's XADD to the next message's last delivery (stream ids are milliseconds).
      const ms = (id: string) => Number(id.split('-')[0]);
      figures.push(`${poison.name}: next message delivered ${Math.max(...sent.map((e) => ms(e.id))) - ms(poisonId)} ms after the poison was sent`);
    });
  }

  test('a poison body to a group that escalates: routed (the reminder without an excerpt), dead-lettered, and the next message goes', async () => {
    const poisonId = await hub.send({ to: '#escalated', body: POISON[0]!.body });
    const nextId = await hub.send({ to: '#escalated', body: 'after the poison, escalated' });
    const [dead] = await settled(hub, poisonId, 1, 30_000);
    const [sent] = await settled(hub, nextId, 1, 30_000);
    assert.deepEqual([dead?.type, dead?.attempts, sent?.type], ['dead', '1', 'sent']);
    assert.equal(await hub.redis.xlen(`${hub.prefix}:in`), 0, 'nothing left unrouted');
    assert.equal(await hub.redis.hget(`${hub.prefix}:escalation:${poisonId}`, 'excerpt'), '(the body could not be formatted)');
  });

  test('bidi controls and colours that are not #RRGGBB reach no peer; the webhook keeps the raw body beside the sanitized forms', async () => {
    const subject = 'Invoice \u202Efdp.exe';
    const body = '<p>pay <a href="https://evil.example/">https://bank.example/\u202Etxt.exe</a> \u2066now\u2069 &#x202E;'
      + '<font color="expression(alert(1))" data-mx-bg-color="url(https://evil.example/x)">!</font>'
      + '<span data-mx-color="#00ff00">ok</span></p>';
    const id = await hub.send({ to: '#everyone', subject, body });
    const outcomes = await settled(hub, id, CHANNELS.length, 30_000);
    assert.deepEqual(outcomes.map((e) => e.type), Array(CHANNELS.length).fill('sent'), JSON.stringify(outcomes.map((e) => [e.channel, e.error])));
    const seen: Record<string, string> = {};
    const matrix = hs.messages(room).find((m) => String(m.content.body).startsWith('Invoice'));
    seen.matrix = JSON.stringify(matrix?.content);
    const mail = smtp.messages.find((m) => m.parsed.subject?.startsWith('Invoice'));
    seen.email = JSON.stringify([mail?.parsed.subject, mail?.parsed.text, mail?.parsed.html]);
    seen.slack = JSON.stringify(slack.messages.find((m) => m.text.includes('Invoice'))?.text);
    seen.twitter = JSON.stringify(x.posts.find((p) => p.text.startsWith('Invoice'))?.text);
    const hook = webhook.requests.find((r) => (r.json as { subject?: string }).subject === subject)?.json as { body: string; html: string; text: string } | undefined;
    seen.webhook = JSON.stringify([hook?.html, hook?.text]);
    for (const channel of CHANNELS) {
      assert.ok(seen[channel] && seen[channel] !== '[null,null,null]' && seen[channel] !== 'undefined', `${channel}: received`);
      assert.doesNotMatch(seen[channel], /[\u202A-\u202E\u2066-\u2069]|\\u202[a-e]|\\u206[6-9]/i, `${channel}: ${seen[channel]}`);
      assert.doesNotMatch(seen[channel], /expression|url\(/, `${channel}: ${seen[channel]}`);
    }
    assert.match(seen.matrix, /data-mx-color=\\"#00ff00\\"/, 'a #RRGGBB colour is kept');
    assert.equal(hook?.body, body, 'the webhook `body` is the producer’s own, as documented');
  });

  test('markdown `*a` × 32,000: formatted (the marks as typed), refused only by the peers with a size limit', async () => {
    const body = '*a'.repeat(32_000);
    const id = await hub.send({ to: '#everyone', body, format: 'markdown' });
    const outcomes = Object.fromEntries((await settled(hub, id, CHANNELS.length, 30_000)).map((e) => [e.channel, e]));
    for (const channel of ['email', 'twitter', 'webhook']) assert.equal(outcomes[channel]?.type, 'sent', channel);
    // 64,000 characters of text are more than a Matrix event (65,536 bytes with the HTML) or a Slack message (40,000) holds.
    assert.match(outcomes.matrix?.error ?? '', /M_TOO_LARGE/);
    assert.match(outcomes.slack?.error ?? '', /msg_too_long/);
    const json = webhook.requests.find((r) => (r.json as { body?: string }).body === body)?.json as { text: string; html: string } | undefined;
    assert.equal(json?.text, body);
    assert.ok(!json?.html.includes('<em>'), 'no emphasis made of 32,000 marks');
  });

  test('markdown `*a` × 10,000 is delivered everywhere, the marks as typed', async () => {
    // Its own first words: X refuses a post equal to an earlier one (the one above, cut to 280).
    const body = `Ten thousand: ${'*a'.repeat(10_000)}`;
    const id = await hub.send({ to: '#everyone', body, format: 'markdown' });
    const outcomes = await settled(hub, id, CHANNELS.length, 30_000);
    assert.deepEqual(outcomes.map((e) => e.type), Array(CHANNELS.length).fill('sent'), JSON.stringify(outcomes.map((e) => [e.channel, e.type, e.error])));
    assert.ok(hs.messages(room).some((m) => m.content.body === body), 'Matrix got the text as typed');
  });
});
