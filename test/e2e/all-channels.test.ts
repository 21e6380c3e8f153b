/**
 * Every shipped channel at once, end to end: one XADD to a group that holds a
 * Matrix room, an email address, a Slack channel, an X post and DM, and a
 * webhook reaches every peer; and no configured secret (tokens, the SMTP
 * password, the X keys, the webhook key) ever shows in what the hub writes —
 * logs, dead letters, events, `hub status`, /metrics — also when peers refuse
 * the hub's credentials or its messages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { messageStatus } from '../../core/status/message.ts';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { type SlackTestServer, startSlackServer } from '../servers/slack/server.ts';
import { type TestSmtpServer, startSmtpServer } from '../servers/smtp.ts';
import { type XCredentials, type XTestServer, startXServer } from '../servers/twitter/server.ts';
import { type TestWebhookServer, startWebhookServer, verifySignature } from '../servers/webhook.ts';
import { type MatrixBot, httpGet, idle, peerEnv, settled } from '../support/e2e.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const SMTP_USER = 'hub-mailer';
const SMTP_PASSWORD = 'smtp-Pa55-e2e-7Hq2zKw9';
const SLACK_TOKEN = 'xoxe-4242424242-2424242424-e2eSlackSecretQ7x';
const SLACK_REVOKED = 'xoxe-5151515151-1515151515-e2eRevokedSecretM3';
const X: XCredentials = {
  appKey: 'e2eAppKey-Vb81mQ0s',
  appSecret: 'e2eAppSecret-Zr40LpX2nW',
  accessToken: '9999999999-e2eAccessToken-Ty6Jk3',
  accessSecret: 'e2eAccessSecret-Pq5Ws9Nd',
};
const X_WRONG_SECRET = 'e2eWrongAppSecret-Hx7Rb2Gm';
const WEBHOOK_SECRET = 'whsec-e2e-Lm0Qv8Rt3Yc';
const MATRIX_BAD_TOKEN = 'mat-e2e-bad-token-Fh63Ko';

describe('all five channels end to end, and no secret in anything the hub writes', () => {
  let hs: Homeserver;
  let bot: MatrixBot;
  let smtp: TestSmtpServer;
  let slack: SlackTestServer;
  let x: XTestServer;
  let webhook: TestWebhookServer;
  let room: string;
  let closedRoom: string;
  const hubs: TestHub[] = [];
  const sentIds = new Map<TestHub, string[]>();

  function envFor(overrides: Record<string, string> = {}): Record<string, string> {
    return { ...peerEnv({ matrix: { hs, bot }, smtp, slack: { url: slack.url, token: SLACK_TOKEN }, x }), WEBHOOK_SECRET, ...overrides };
  }

  async function hubWith(env: Record<string, string>): Promise<TestHub> {
    const hub = await startTestHub({
      name: 'e2e-all',
      env,
      mapping: {
        '#everyone': {
          matrix: [room],
          email: ['Ops Team <ops@example.org>'],
          slack: ['#ops'],
          twitter: ['post', '@halfshot'],
          webhook: [webhook.url('/alerts')],
        },
        '#refused': {
          matrix: [closedRoom],
          email: ['nobody@example.org'],
          slack: ['C0NOTMEMB1'],
          twitter: ['@closed_dms'],
          webhook: [webhook.url('/gone')],
        },
      },
      // debug: the most the hub ever logs.
      config: { logLevel: 'debug', delivery: { maxAttempts: 2 }, channels: { email: { tlsCa: smtp.ca } } },
    });
    hubs.push(hub);
    sentIds.set(hub, []);
    return hub;
  }

  async function send(hub: TestHub, fields: Record<string, string>): Promise<string> {
    const id = await hub.send(fields);
    sentIds.get(hub)!.push(id);
    return id;
  }

  before(async () => {
    [hs, smtp, slack, x, webhook] = await Promise.all([
      startHomeserver(),
      startSmtpServer({ user: SMTP_USER, password: SMTP_PASSWORD }),
      startSlackServer({ tokens: { [SLACK_TOKEN]: 'active', [SLACK_REVOKED]: 'revoked' } }),
      startXServer({ credentials: X }),
      startWebhookServer(),
    ]);
    bot = hs.registerUser('bot');
    const alice = hs.registerUser('alice').userId;
    room = hs.createRoom(bot.userId, { name: 'everyone' });
    closedRoom = hs.createRoom(alice, { name: 'closed' });
  });

  after(async () => {
    while (hubs.length) await hubs.pop()!.stop();
    await Promise.all([smtp?.close(), slack?.close(), x?.close(), webhook?.close()]);
    assert.deepEqual(slack?.violations, [], 'Slack spec');
    assert.deepEqual(x?.violations, [], 'X spec');
    await hs?.close(); // throws on a Matrix spec violation
  });

  test('one XADD to a group holding every channel reaches every peer', async () => {
    const hub = await hubWith(envFor());
    const id = await send(hub, { to: '#everyone', subject: 'Orders API failing', body: '<p><b>/api/orders</b> failed 12 times</p>' });
    const outcomes = await settled(hub, id, 6);
    assert.deepEqual(outcomes.map((o) => `${o.type} ${o.channel}`).sort(), [
      'sent email', 'sent matrix', 'sent slack', 'sent twitter', 'sent twitter', 'sent webhook',
    ]);

    const [event, ...moreEvents] = hs.messages(room);
    assert.equal(moreEvents.length, 0);
    assert.equal(event?.content.msgtype, 'm.text');
    assert.equal(event?.content.body, 'Orders API failing\n\n/api/orders failed 12 times');
    assert.equal(event?.content.formatted_body, '<b>Orders API failing</b><br /><p><b>/api/orders</b> failed 12 times</p>');

    const [mail, ...moreMail] = smtp.messages;
    assert.equal(moreMail.length, 0);
    assert.deepEqual(mail?.envelope.to, ['ops@example.org']);
    assert.equal(mail?.parsed.to && 'value' in mail.parsed.to ? mail.parsed.to.value[0]?.name : undefined, 'Ops Team', 'the target as written, with its name');
    assert.equal(mail?.envelope.from, 'hub@example.org');
    assert.equal(mail?.user, SMTP_USER);
    assert.equal(mail?.secure, true, 'logged in and sent over STARTTLS');
    assert.equal(mail?.parsed.subject, 'Orders API failing');
    assert.match(String(mail?.parsed.html), /<b>\/api\/orders<\/b> failed 12 times/);
    assert.match(String(mail?.parsed.text), /\/api\/orders failed 12 times/);

    const [message, ...moreSlack] = slack.messages;
    assert.equal(moreSlack.length, 0);
    assert.equal(message?.channel, 'C0OPS00001');
    assert.equal(message?.requested, '#ops');
    assert.match(String(message?.text), /\*Orders API failing\*/);
    assert.match(String(message?.text), /\*\/api\/orders\* failed 12 times/);

    assert.equal(x.posts.length, 1);
    assert.equal(x.posts[0]?.text, 'Orders API failing\n/api/orders failed 12 times');
    assert.equal(x.dms.length, 1);
    assert.equal(x.dms[0]?.participantId, '1234567890');
    assert.equal(x.dms[0]?.text, 'Orders API failing\n/api/orders failed 12 times');

    const posts = webhook.requests.filter((r) => r.path === '/alerts');
    assert.equal(posts.length, 1);
    const post = posts[0]!;
    assert.equal(post.method, 'POST');
    assert.ok(verifySignature(post.raw, post.headers['x-hub-signature-256'], WEBHOOK_SECRET), 'signed with WEBHOOK_SECRET');
    const payload = post.json as Record<string, unknown>;
    assert.equal(payload.messageId, id);
    assert.equal(payload.subject, 'Orders API failing');
    assert.equal(payload.body, '<p><b>/api/orders</b> failed 12 times</p>');
    assert.equal(post.headers['x-hub-delivery'], payload.id);

    const status = await messageStatus(hub.redis, hub.app.cradle.keys, id);
    assert.equal(status?.deliveries.length, 6);
    for (const d of status!.deliveries) assert.equal(d.state, 'sent', `${d.channel} ${d.target}`);
    const peer = (channel: string, target: string) => status!.deliveries.find((d) => d.channel === channel && d.target === target)?.peerId;
    assert.equal(peer('matrix', room), event?.event_id);
    assert.equal(peer('slack', '#ops'), message?.ts);
    assert.equal(peer('twitter', 'post'), x.posts[0]?.id);
    // hub status names a receiver as its plugin normalizes it: one receiver under two spellings is one target.
    assert.ok(peer('email', 'ops@example.org'), 'the Message-ID');
  });

  test('peers that refuse the message: dead letters with the peers\' answers', async () => {
    const hub = hubs[0]!;
    smtp.rejectRecipient('nobody@example.org');
    webhook.replyNext({ status: 410, body: 'this hook is gone' });
    const id = await send(hub, { to: '#refused', subject: 'Disk full', body: 'on db1', format: 'text' });
    const outcomes = await settled(hub, id, 5);
    assert.deepEqual(outcomes.map((o) => `${o.type} ${o.channel}`).sort(), ['dead email', 'dead matrix', 'dead slack', 'dead twitter', 'dead webhook']);
    const letters = (await hub.read('dead')).filter((d) => d.entry === id);
    assert.equal(letters.length, 5);
    for (const letter of letters) {
      assert.equal(letter.stage, 'delivery');
      assert.ok(letter.reason && letter.error, `${letter.channel}: a reason and the peer's answer`);
    }
    const byChannel = new Map(letters.map((l) => [l.channel, l]));
    assert.match(byChannel.get('email')!.error!, /550/);
    assert.match(byChannel.get('slack')!.error!, /not_in_channel/);
    assert.match(byChannel.get('matrix')!.error!, /M_FORBIDDEN/);
    assert.match(byChannel.get('webhook')!.error!, /410/);
  });

  test('peers that echo the credentials back in their refusals: dead letters with the answers, the secrets blanked', async () => {
    const hub = hubs[0]!;
    hs.failNext(1, { status: 400, errcode: 'M_BAD_JSON', error: `Bad request from token ${bot.accessToken}` }, /\/send\//);
    smtp.failNextMessages(1, { code: 554, message: `5.7.1 refused: AUTH ${SMTP_USER} ${SMTP_PASSWORD} not allowed to relay` });
    webhook.replyNext({ status: 400, body: `bad request: signed with ${WEBHOOK_SECRET}?` });
    const id = await send(hub, { to: '#everyone', subject: 'Echo', body: 'peers that echo', format: 'text', channels: 'matrix,email,webhook' });
    const outcomes = await settled(hub, id, 3);
    assert.deepEqual(outcomes.map((o) => `${o.type} ${o.channel}`).sort(), ['dead email', 'dead matrix', 'dead webhook']);
    const letters = (await hub.read('dead')).filter((d) => d.entry === id);
    const byChannel = new Map(letters.map((l) => [l.channel, l]));
    assert.match(byChannel.get('matrix')!.error!, /Bad request from token \[redacted\]/);
    assert.match(byChannel.get('email')!.error!, /554 5\.7\.1 refused: AUTH hub-mailer \[redacted\] not allowed/);
    assert.match(byChannel.get('webhook')!.error!, /signed with \[redacted\]/);
  });

  test('wrong credentials at every peer: every delivery fails, with errors that carry request details', async () => {
    const hub = await hubWith(
      envFor({
        MATRIX_ACCESS_TOKEN: MATRIX_BAD_TOKEN,
        SMTP_URL: smtp.url({ password: `${SMTP_PASSWORD}-wrong` }),
        SLACK_TOKEN: SLACK_REVOKED,
        TWITTER_APP_SECRET: X_WRONG_SECRET,
      }),
    );
    webhook.replyNext({ status: 401, body: 'unauthorized' });
    const id = await send(hub, { to: '#everyone', subject: 'Creds', body: 'with wrong credentials', format: 'text' });
    const outcomes = await settled(hub, id, 6, 60_000);
    assert.deepEqual(outcomes.map((o) => `${o.type} ${o.channel}`).sort(), [
      'dead email', 'dead matrix', 'dead slack', 'dead twitter', 'dead twitter', 'dead webhook',
    ]);
    const letters = (await hub.read('dead')).filter((d) => d.entry === id);
    const byChannel = new Map(letters.map((l) => [l.channel, l]));
    assert.match(byChannel.get('matrix')!.error!, /M_UNKNOWN_TOKEN/);
    assert.match(byChannel.get('slack')!.error!, /token_revoked|invalid_auth/);
    assert.match(byChannel.get('email')!.error!, /535/);
    assert.match(byChannel.get('twitter')!.error!, /401/);
    await idle(hub);
  });

  test('no secret appears in logs, dead letters, events, hub status or /metrics', async () => {
    const secrets = [
      bot.accessToken, MATRIX_BAD_TOKEN,
      SMTP_PASSWORD, `${SMTP_PASSWORD}-wrong`,
      SLACK_TOKEN, SLACK_REVOKED,
      X.appKey, X.appSecret, X.accessToken, X.accessSecret, X_WRONG_SECRET,
      WEBHOOK_SECRET,
    ];
    const forms = (s: string) => [s, encodeURIComponent(s), Buffer.from(s).toString('base64')];
    assert.equal(hubs.length, 2, 'this test reads what the hubs of the tests above wrote');
    const places: Array<[string, string]> = [];
    for (const [n, hub] of hubs.entries()) {
      places.push([`hub ${n} logs`, hub.logs.join('\n')]);
      places.push([`hub ${n} dead letters`, JSON.stringify(await hub.read('dead'))]);
      places.push([`hub ${n} events`, JSON.stringify(await hub.read('events'))]);
      for (const id of sentIds.get(hub)!) {
        places.push([`hub ${n} status of ${id}`, JSON.stringify(await messageStatus(hub.redis, hub.app.cradle.keys, id))]);
      }
      places.push([`hub ${n} /metrics`, (await httpGet(hub.app.http!.port, '/metrics')).body]);
    }
    // The check is not vacuous: the failures were logged and recorded.
    assert.ok(hubs[1]!.logs.some((l) => l.includes('delivery dead-lettered') && l.includes('M_UNKNOWN_TOKEN')));
    assert.ok(places.every(([, text]) => text.length > 0));
    assert.ok(places.some(([where, text]) => where === 'hub 0 dead letters' && text.includes('[redacted]')), 'secrets echoed by peers were there to be blanked');
    const leaks: string[] = [];
    for (const [where, text] of places) {
      for (const secret of secrets) {
        for (const form of forms(secret)) if (text.includes(form)) leaks.push(`${where} holds ${secret.slice(0, 10)}… (${form === secret ? 'as is' : 'encoded'})`);
      }
    }
    assert.deepEqual(leaks, []);
  });
});
