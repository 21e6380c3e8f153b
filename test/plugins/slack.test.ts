import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import slack from '../../plugins/slack/index.ts';
import type { SlackSettings } from '../../plugins/slack/settings.ts';
import type { ChannelSender, Delivery, OutboundMessage } from '../../core/plugin-api.ts';
import { isPermanent, isRetryable } from '../../core/plugin-api.ts';
import { deliveryFailure, pluginContext, testDelivery } from '../support/plugin-context.ts';
import { SLACK_TEST_TOKEN, type SlackTestServer, startSlackServer } from '../servers/slack/server.ts';

const REVOKED = 'xoxe-1111111111-2222222222-revokedsecret';
const INACTIVE = 'xoxe-3333333333-4444444444-inactivesecret';
const UNKNOWN = 'xoxe-5555555555-6666666666-unknownsecret';

const delivery = (target: string, message: Partial<OutboundMessage> = {}) => testDelivery('slack', target, { to: ['#admins'], body: '<p>hello</p>', format: 'html', ...message });

describe('slack plugin against the local Slack Web API', () => {
  let server: SlackTestServer;
  const contexts: Array<{ close(): Promise<void> }> = [];

  async function senderWith(token: string = SLACK_TEST_TOKEN): Promise<ChannelSender> {
    const ctx = await pluginContext<SlackSettings>(slack, { token, apiUrl: server.url });
    contexts.push(ctx);
    return slack.createSender(ctx);
  }

  /** The error a delivery fails with. */
  async function failure(sender: ChannelSender, d: Delivery): Promise<Error> {
    const err = await deliveryFailure(sender.deliver(d, new AbortController().signal));
    assert.ok(!inspect(err, { depth: 10 }).includes('hubtestsecret'), 'the token never appears in an error');
    for (const secret of [REVOKED, INACTIVE, UNKNOWN]) assert.ok(!inspect(err, { depth: 10 }).includes(secret));
    return err;
  }

  before(async () => {
    server = await startSlackServer({
      tokens: { [SLACK_TEST_TOKEN]: 'active', [REVOKED]: 'revoked', [INACTIVE]: 'inactive' },
    });
  });
  afterEach(() => {
    assert.deepEqual(server.violations, [], 'requests and responses conform to the Slack spec');
  });
  after(async () => {
    for (const ctx of contexts) await ctx.close();
    await server.close();
  });

  test('delivers to a channel id, with the ts as receipt', async () => {
    const sender = await senderWith();
    const receipt = await sender.deliver(delivery('C024BE91L'), new AbortController().signal);
    const sent = server.messages.at(-1)!;
    assert.equal(sent.channel, 'C024BE91L');
    assert.deepEqual(receipt, { peerId: sent.ts, details: { channel: 'C024BE91L' } });
    assert.equal(sent.text, 'hello');
    assert.equal(sent.args.mrkdwn, 'true');
    assert.equal(sent.args.unfurl_links, 'false');
  });

  test('delivers to a #name, case-insensitively', async () => {
    const sender = await senderWith();
    const receipt = await sender.deliver(delivery('#Ops'), new AbortController().signal);
    assert.equal(server.messages.at(-1)!.requested, '#ops');
    assert.deepEqual(receipt.details, { channel: 'C0OPS00001' });
  });

  test('delivers to a user id, in the bot\'s direct-message conversation', async () => {
    const sender = await senderWith();
    const receipt = await sender.deliver(delivery('U0WILL0001'), new AbortController().signal);
    assert.deepEqual(receipt.details, { channel: 'D0WILL0001' });
    assert.equal(server.messages.at(-1)!.requested, 'U0WILL0001');
  });

  test('converts rich HTML to mrkdwn, subject as a bold first line', async () => {
    const sender = await senderWith();
    const body = [
      '<h2>Orders <em>API</em> failing</h2>',
      '<p><b>/api/orders</b> failed <i>12 times</i> in 5 min, <s>recovered</s> <strong>not yet </strong>.<br>',
      'See <a href="https://status.example.com/o?a=1&amp;b=2">the status page</a> or <a href="https://example.com">https://example.com</a>.</p>',
      '<ul><li>first</li><li>second<ul><li>nested</li></ul></li></ul>',
      '<ol start="3"><li>three</li><li>four</li></ol>',
      '<p>Run <code>kubectl get pods</code> then:</p>',
      '<pre><code>if (a &lt; b &amp;&amp; c &gt; d) {\n  restart();\n}\n</code></pre>',
      '<blockquote>It is <u>always</u> DNS</blockquote>',
      '<script>alert("x")</script><p onclick="x()">end</p>',
    ].join('\n');
    await sender.deliver(delivery('C024BE91L', { subject: 'Orders API down', body }), new AbortController().signal);
    assert.equal(
      server.messages.at(-1)!.text,
      [
        '*Orders API down*',
        '*Orders _API_ failing*',
        '',
        '*/api/orders* failed _12 times_ in 5 min, ~recovered~ *not yet* .',
        'See <https://status.example.com/o?a=1&amp;b=2|the status page> or <https://example.com>.',
        '',
        '• first',
        '• second',
        '    • nested',
        '',
        '3. three',
        '4. four',
        '',
        'Run `kubectl get pods` then:',
        '',
        '```',
        'if (a &lt; b &amp;&amp; c &gt; d) {',
        '  restart();',
        '}',
        '```',
        '',
        '> It is always DNS',
        '',
        'end',
      ].join('\n'),
    );
  });

  test('escapes &, < and > the way Slack asks, in text, subject and code', async () => {
    const sender = await senderWith();
    await sender.deliver(
      delivery('C024BE91L', { subject: 'a < b & c', body: '<p>x &lt;@U0WILL0001&gt; &amp; <code>&lt;!channel&gt;</code></p>' }),
      new AbortController().signal,
    );
    assert.equal(server.messages.at(-1)!.text, '*a &lt; b &amp; c*\nx &lt;@U0WILL0001&gt; &amp; `&lt;!channel&gt;`');
  });

  test('plain text and markdown bodies are converted too', async () => {
    const sender = await senderWith();
    await sender.deliver(delivery('C024BE91L', { body: 'disk <90%> full\nsecond line', format: 'text' }), new AbortController().signal);
    assert.equal(server.messages.at(-1)!.text, 'disk &lt;90%&gt; full\nsecond line');
    await sender.deliver(delivery('C024BE91L', { body: '**bold** and [docs](https://docs.example.com)\n\n- one\n- two', format: 'markdown' }), new AbortController().signal);
    assert.equal(server.messages.at(-1)!.text, '*bold* and <https://docs.example.com|docs>\n\n• one\n• two');
  });

  const permanent: Array<{ error: string; target: string; token?: string; message?: Partial<OutboundMessage>; reason: RegExp }> = [
    { error: 'channel_not_found', target: '#no-such-channel', reason: /^Slack says channel_not_found: the channel #no-such-channel does not exist or the bot cannot see it$/ },
    { error: 'channel_not_found', target: 'U0NOBODY01', reason: /the channel U0NOBODY01 does not exist/ },
    { error: 'not_in_channel', target: '#not-member', reason: /^Slack says not_in_channel: the bot is not a member of #not-member: invite it/ },
    { error: 'is_archived', target: 'C0ARCHIVE1', reason: /^Slack says is_archived: the channel C0ARCHIVE1 is archived/ },
    { error: 'restricted_action', target: '#announcements', reason: /^Slack says restricted_action: a workspace setting prevents the bot from posting in #announcements$/ },
    { error: 'msg_too_long', target: '#ops', message: { body: 'x'.repeat(40_001), format: 'text' }, reason: /too long/ },
    { error: 'no_text', target: '#ops', message: { body: '<p> </p>' }, reason: /no text/ },
    { error: 'invalid_auth', target: '#ops', token: UNKNOWN, reason: /^Slack says invalid_auth: the token is not valid for this workspace: check SLACK_TOKEN$/ },
    { error: 'account_inactive', target: '#ops', token: INACTIVE, reason: /deactivated/ },
    { error: 'token_revoked', target: '#ops', token: REVOKED, reason: /^Slack says token_revoked: the token was revoked/ },
  ];
  for (const { error, target, token, message, reason } of permanent) {
    test(`${error} (${target}) is a permanent error with a readable reason`, async () => {
      const sender = await senderWith(token);
      const err = await failure(sender, delivery(target, message));
      assert.ok(isPermanent(err), `${err.name}: ${err.message}`);
      assert.equal(err.code, error);
      assert.match(err.message, reason);
      assert.equal(server.calls.at(-1)!.error, error);
    });
  }

  test('429 is a rate-limited RetryableError with the server\'s wait, and the SDK neither retried nor waited', async () => {
    const sender = await senderWith();
    // Retry-After of a minute: an SDK that slept it out would answer after the limit, and the test waits less than that.
    server.rateLimit({ next: 1, retryAfter: 60 });
    const before = server.calls.length;
    const err = await Promise.race([failure(sender, delivery('#ops')), sleep(50_000, undefined, { ref: false }).then(() => assert.fail('the SDK slept through the Retry-After'))]);
    assert.ok(isRetryable(err));
    assert.equal(err.rateLimited, true);
    assert.equal(err.retryAfterMs, 60_000);
    assert.deepEqual(server.calls.slice(before).map(({ at: _, ...call }) => call), [{ method: 'chat.postMessage', status: 429, error: 'ratelimited' }]);
    // The limit is over: the runtime's next try goes through.
    await sender.deliver(delivery('#ops'), new AbortController().signal);
    assert.equal(server.calls.length, before + 2);
  });

  test('every Nth call rate limited', async () => {
    const sender = await senderWith();
    server.rateLimit({ every: 2, retryAfter: 1 });
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      try {
        await sender.deliver(delivery('#ops'), new AbortController().signal);
        outcomes.push('sent');
      } catch (err) {
        outcomes.push(isRetryable(err) && err.rateLimited ? `wait ${err.retryAfterMs}` : String(err));
      }
    }
    server.rateLimit({});
    assert.deepEqual(outcomes, ['sent', 'wait 1000', 'sent', 'wait 1000']);
  });

  for (const failure_ of ['internal_error', 'fatal_error', 'service_unavailable']) {
    test(`${failure_} is retryable`, async () => {
      const sender = await senderWith();
      server.failNext(failure_);
      const err = await failure(sender, delivery('#ops'));
      assert.ok(isRetryable(err));
      assert.equal(err.code, failure_);
      assert.equal(err.rateLimited, false);
    });
  }

  test('HTTP 5xx is retryable, without a retry by the SDK', async () => {
    const sender = await senderWith();
    server.failNext({ status: 503 });
    const before = server.calls.length;
    const err = await failure(sender, delivery('#ops'));
    assert.ok(isRetryable(err));
    assert.equal(err.code, 'http_503');
    assert.equal(server.calls.length, before + 1);
  });

  test('an unreachable API is retryable', async () => {
    const ctx = await pluginContext<SlackSettings>(slack, { token: SLACK_TEST_TOKEN, apiUrl: 'http://127.0.0.1:9/api/' });
    contexts.push(ctx);
    const err = await failure(await slack.createSender(ctx), delivery('#ops'));
    assert.ok(isRetryable(err));
    assert.equal(err.code, 'request_error');
  });

  test('an aborted delivery is retryable and sends nothing', async () => {
    const sender = await senderWith();
    const controller = new AbortController();
    controller.abort();
    const before = server.messages.length;
    await assert.rejects(sender.deliver(delivery('#ops'), controller.signal), (err) => isRetryable(err) && err.code === 'aborted');
    assert.equal(server.messages.length, before);
  });

  test('the server itself reports requests that break the spec', async () => {
    const res = await fetch(`${server.url}chat.postMessage`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SLACK_TEST_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'no channel', colour: 'red' }),
    });
    assert.deepEqual(await res.json(), { ok: false, error: 'channel_not_found' });
    assert.deepEqual(server.violations.splice(0), [
      'chat.postMessage: required parameter channel is missing',
      'chat.postMessage: parameter colour is not in the spec',
    ]);
  });
});

describe('slack settings and targets', () => {
  test('targets: ids, #names and user ids; readable sentences otherwise', () => {
    for (const ok of ['C024BE91L', 'G0PRIVATE1', 'D0WILL0001', '#ops', '#on-call_2', 'U0WILL0001', 'W0GRACE001']) {
      assert.equal(slack.validateTarget(ok), undefined, ok);
    }
    assert.match(slack.validateTarget('@will')!, /member id \(U… or W…/);
    assert.match(slack.validateTarget('#has space')!, /not a Slack channel name/);
    assert.match(slack.validateTarget('ops')!, /not a Slack target: write a channel id/);
    assert.equal(slack.normalizeTarget!('#Ops'), '#ops');
    assert.equal(slack.normalizeTarget!('C024BE91L'), 'C024BE91L');
  });

  test('settings: apiUrl defaults to Slack and always ends with /; the token must look like one', () => {
    const schema = slack.settings.schema;
    assert.equal(schema.parse({ token: SLACK_TEST_TOKEN }).apiUrl, 'https://slack.com/api/');
    assert.equal(schema.parse({ token: SLACK_TEST_TOKEN, apiUrl: 'http://127.0.0.1:1/api' }).apiUrl, 'http://127.0.0.1:1/api/');
    const bad = schema.safeParse({ token: 'not-a-token-secret' });
    assert.equal(bad.success, false);
    assert.ok(!JSON.stringify(bad.error).includes('not-a-token-secret'), 'the value is not echoed');
    assert.deepEqual(slack.settings.secrets, ['token']);
  });
});
