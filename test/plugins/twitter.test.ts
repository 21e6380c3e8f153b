import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import twitterText from 'twitter-text';
import twitter from '../../plugins/twitter/index.ts';
import type { TwitterSettings } from '../../plugins/twitter/settings.ts';
import type { ChannelSender, Delivery, OutboundMessage, PluginContext } from '../../core/plugin-api.ts';
import { isPermanent, isRetryable } from '../../core/plugin-api.ts';
import { deliveryFailure, pluginContext, testDelivery } from '../support/plugin-context.ts';
import { X_TEST_CREDENTIALS, type XTestServer, startXServer } from '../servers/twitter/server.ts';

let seq = 0;
// A body of its own each time: X refuses a duplicate of a recent post.
const delivery = (target: string, message: Partial<OutboundMessage> = {}) => testDelivery('twitter', target, { to: ['#admins'], body: `<p>message ${++seq}</p>`, format: 'html', ...message });

const SECRETS = Object.values(X_TEST_CREDENTIALS);

/** Nothing of the credentials, nor the OAuth header, in the error however deeply it is printed. */
function assertNoSecrets(err: unknown): void {
  const printed = `${inspect(err, { depth: Infinity, showHidden: true })} ${JSON.stringify(err)}`;
  for (const secret of [...SECRETS, 'wrong-secret-value', 'oauth_signature', 'OAuth ']) {
    assert.ok(!printed.includes(secret), `the error does not contain ${secret.slice(0, 12)}…`);
  }
}

describe('twitter plugin against the local X API', () => {
  let server: XTestServer;
  const contexts: Array<{ close(): Promise<void> }> = [];
  const senders: ChannelSender[] = [];

  async function setup(overrides: Partial<TwitterSettings> = {}): Promise<{ sender: ChannelSender; ctx: PluginContext<TwitterSettings> }> {
    const ctx = await pluginContext<TwitterSettings>(twitter, { ...X_TEST_CREDENTIALS, apiUrl: server.url, ...overrides });
    contexts.push(ctx);
    const sender = await twitter.createSender(ctx);
    senders.push(sender);
    return { sender, ctx };
  }

  async function failure(sender: ChannelSender, d: Delivery): Promise<Error> {
    const err = await deliveryFailure(sender.deliver(d, new AbortController().signal));
    assertNoSecrets(err);
    return err;
  }

  before(async () => {
    server = await startXServer();
  });
  afterEach(() => {
    assert.deepEqual(server.violations, [], 'requests and responses conform to the X spec');
  });
  after(async () => {
    for (const sender of senders) await sender.close?.();
    for (const ctx of contexts) await ctx.close();
    await server.close();
  });

  test('posts: plain text, subject first, the post id as receipt', async () => {
    const { sender } = await setup();
    const receipt = await sender.deliver(
      delivery('post', { subject: 'Orders API failing', body: '<p><b>/api/orders</b> failed 12 times in 5 min</p>' }),
      new AbortController().signal,
    );
    const post = server.posts.at(-1)!;
    assert.deepEqual(receipt, { peerId: post.id });
    assert.equal(post.text, 'Orders API failing\n/api/orders failed 12 times in 5 min');
  });

  test('DMs an @handle, looked up once for two deliveries and cached in Redis', async () => {
    const { sender, ctx } = await setup();
    const first = await sender.deliver(delivery('@HalfShot'), new AbortController().signal);
    const second = await sender.deliver(delivery('@halfshot'), new AbortController().signal);
    assert.equal(server.lookups('halfshot'), 1);
    const [a, b] = server.dms.slice(-2);
    assert.equal(a!.participantId, '1234567890');
    assert.equal(b!.participantId, '1234567890');
    assert.deepEqual(first, { peerId: a!.dmEventId, details: { conversation: a!.conversationId } });
    assert.equal(second.peerId, b!.dmEventId);
    assert.equal(await ctx.redis.get(ctx.key('user', 'halfshot')), '1234567890');
  });

  test('DMs a numeric user id as is, without a lookup', async () => {
    const { sender } = await setup();
    const calls = server.calls.length;
    const receipt = await sender.deliver(delivery('2244994945', { body: 'disk full', format: 'text' }), new AbortController().signal);
    assert.deepEqual(server.calls.slice(calls).map((c) => c.path), ['/2/dm_conversations/with/2244994945/messages']);
    assert.equal(server.dms.at(-1)!.text, 'disk full');
    assert.equal(receipt.peerId, server.dms.at(-1)!.dmEventId);
  });

  test('a long post with URLs is cut to a weighted 280, with an ellipsis, never inside a URL or a surrogate pair', async () => {
    const { sender } = await setup();
    const urls = Array.from({ length: 12 }, (_, i) => `https://status.example.com/incidents/${i}/${'x'.repeat(40)}`);
    const body = urls.map((url, i) => `<p>Service ${i} 🚨 is down, see <a href="${url}">${url}</a> for details 👩‍👩‍👧‍👦</p>`).join('');
    await sender.deliver(delivery('post', { subject: 'Many services down', body }), new AbortController().signal);
    const text = server.posts.at(-1)!.text;
    const parsed = twitterText.parseTweet(text);
    assert.ok(parsed.valid, 'a valid post');
    assert.ok(parsed.weightedLength <= 280 && parsed.weightedLength > 250, `weighted length ${parsed.weightedLength}`);
    assert.ok(text.endsWith('…'));
    assert.ok(text.startsWith('Many services down\n'));
    assert.ok(text.isWellFormed(), 'no lone surrogate');
    const kept = twitterText.extractUrls(text);
    assert.ok(kept.length >= 3);
    for (const url of kept) assert.ok(urls.includes(url), `${url} is whole`);
  });

  test('a long DM is cut to 10,000 characters with an ellipsis', async () => {
    const { sender } = await setup();
    await sender.deliver(delivery('1234567890', { body: 'abc '.repeat(5000), format: 'text' }), new AbortController().signal);
    const text = server.dms.at(-1)!.text;
    assert.ok([...text].length <= 10_000 && [...text].length > 9_900);
    assert.ok(text.endsWith('abc…'));
  });

  test('429 is rate limited until x-rate-limit-reset, without a retry by the SDK', async () => {
    const { sender } = await setup();
    server.rateLimit({ next: 1, resetInSeconds: 120 });
    const calls = server.calls.length;
    const err = await failure(sender, delivery('post'));
    assert.ok(isRetryable(err));
    assert.equal(err.rateLimited, true);
    assert.equal(err.code, 'rate_limited');
    assert.ok(err.retryAfterMs! > 118_000 && err.retryAfterMs! <= 120_000, `retryAfterMs ${err.retryAfterMs}`);
    assert.equal(server.calls.length, calls + 1);
    assert.equal(server.calls.at(-1)!.status, 429);
  });

  test('a duplicate post is permanent, with X\'s own detail', async () => {
    const { sender } = await setup();
    const message = { body: 'the same words twice', format: 'text' as const };
    await sender.deliver(delivery('post', message), new AbortController().signal);
    const err = await failure(sender, delivery('post', message));
    assert.ok(isPermanent(err));
    assert.equal(err.code, 'duplicate');
    assert.match(err.message, /You are not allowed to create a Tweet with duplicate content\./);
  });

  test('a bad signature (wrong secret) is permanent and the message holds no secret', async () => {
    const { sender } = await setup({ appSecret: 'wrong-secret-value' });
    const err = await failure(sender, delivery('post'));
    assert.ok(isPermanent(err));
    assert.equal(err.code, 'unauthorized');
    assert.match(err.message, /^X answered 401 \(Unauthorized\): the credentials were refused; check TWITTER_APP_KEY/);
    assert.equal(server.calls.at(-1)!.status, 401);
  });

  test('an unknown @handle is permanent, with X\'s detail', async () => {
    const { sender } = await setup();
    const err = await failure(sender, delivery('@nobody_here'));
    assert.ok(isPermanent(err));
    assert.equal(err.code, 'user_not_found');
    assert.match(err.message, /Could not find user with username: \[nobody_here\]/);
  });

  test('a user who does not accept DMs, and an unknown user id, are permanent', async () => {
    const { sender } = await setup();
    const forbidden = await failure(sender, delivery('@closed_dms'));
    assert.ok(isPermanent(forbidden));
    assert.equal(forbidden.code, 'forbidden');
    assert.match(forbidden.message, /You cannot send messages to this user\..*@closed_dms may not accept direct messages/);
    const missing = await failure(sender, delivery('5555555555'));
    assert.ok(isPermanent(missing));
    assert.equal(missing.code, 'not_found');
  });

  test('5xx and an unreachable API are retryable', async () => {
    const { sender } = await setup();
    server.failNext(503, 500);
    for (const status of [503, 500]) {
      const err = await failure(sender, delivery('post'));
      assert.ok(isRetryable(err));
      assert.equal(err.code, `x_${status}`);
      assert.equal(err.rateLimited, false);
    }
    const { sender: unreachable } = await setup({ apiUrl: 'http://127.0.0.1:9' });
    const err = await failure(unreachable, delivery('post'));
    assert.ok(isRetryable(err));
    assert.equal(err.code, 'network');
    assert.match(err.message, /^X could not be reached \(ECONNREFUSED\)$/);
  });

  test('an aborted delivery is retryable and sends nothing', async () => {
    const { sender } = await setup();
    const controller = new AbortController();
    controller.abort();
    const posts = server.posts.length;
    await assert.rejects(sender.deliver(delivery('post'), controller.signal), (err) => isRetryable(err) && err.code === 'aborted');
    assert.equal(server.posts.length, posts);
  });

  test('the server itself refuses unsigned requests and reports bodies that break the spec', async () => {
    const unsigned = await fetch(`${server.url}/2/tweets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'x' }),
    });
    assert.equal(unsigned.status, 401);
    assert.equal(unsigned.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.deepEqual(await unsigned.json(), { type: 'about:blank', title: 'Unauthorized', detail: 'Unauthorized', status: 401 });
    assert.deepEqual(server.violations, []);
    // A signed request whose body breaks CreatePostsRequest: sent through the plugin's own client library.
    const { TwitterApi } = await import('twitter-api-v2');
    const { Agent } = await import('node:http');
    const client = new TwitterApi({ ...X_TEST_CREDENTIALS }, {
      httpAgent: new Agent(),
      plugins: [{ onBeforeRequestConfig: ({ params }) => { params.url = params.url.replace('https://api.x.com', server.url); } }],
    });
    await assert.rejects(client.v2.post('tweets', { text: 'x', colour: 'red' }), (err: { code?: number }) => err.code === 400);
    assert.deepEqual(server.violations.splice(0), ['createPosts request body must NOT have additional properties ({"text":"x","colour":"red"})']);
  });
});

describe('twitter settings and targets', () => {
  test('targets: post, @handle, user id; readable sentences otherwise', () => {
    for (const ok of ['post', '@halfshot', '@X_Dev_2024', '2244994945']) assert.equal(twitter.validateTarget(ok), undefined, ok);
    assert.match(twitter.validateTarget('@much_too_long_handle')!, /not an X handle/);
    assert.match(twitter.validateTarget('#ops')!, /write "post" for a public post, or @handle or a numeric user id/);
    assert.match(twitter.validateTarget('Post')!, /not an X target/);
    assert.equal(twitter.normalizeTarget!('@HalfShot'), '@halfshot');
    assert.equal(twitter.normalizeTarget!('post'), 'post');
  });

  test('settings: four secrets from the environment, apiUrl defaulting to X', () => {
    const parsed = twitter.settings.schema.parse({ ...X_TEST_CREDENTIALS });
    assert.equal(parsed.apiUrl, 'https://api.x.com');
    assert.equal(twitter.settings.schema.parse({ ...X_TEST_CREDENTIALS, apiUrl: 'http://127.0.0.1:1/' }).apiUrl, 'http://127.0.0.1:1');
    assert.deepEqual(twitter.settings.secrets, ['appKey', 'appSecret', 'accessToken', 'accessSecret']);
    assert.equal(twitter.settings.schema.safeParse({ appKey: 'k' }).success, false);
  });
});
