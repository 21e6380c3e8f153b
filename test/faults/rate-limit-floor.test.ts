/**
 * A peer that answers 429 with `Retry-After: 0`, or with a date already past,
 * must not draw a hot loop: a rate-limited retry waits at least
 * `delivery.rateLimitFloor`, doubled for each 429 in a row. Through a real
 * hub and workers against the local Matrix, Slack, X and webhook peers, each
 * peer answers the first three tries of one delivery 429 that way; the peer
 * records when each try arrived, and the gaps between tries must be at least
 * the floor, twice it, four times it (a lower bound no load can break). The
 * delivery then arrives: three 429s spent none of its two attempts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { SLACK_TEST_TOKEN, type SlackTestServer, startSlackServer } from '../servers/slack/server.ts';
import { type XTestServer, startXServer } from '../servers/twitter/server.ts';
import { type TestWebhookServer, startWebhookServer } from '../servers/webhook.ts';
import { peerEnv, sendsTo, settled } from '../support/e2e.ts';
import { type TestHub, startTestHub } from '../support/hub.ts';

const FLOOR_MS = 300;
const LIMITED = 3;
const PAST = 'Wed, 21 Oct 2015 07:28:00 GMT';
/** setTimeout may fire up to a millisecond before its time; the tries' own times are taken by the peer. */
const TIMER_SLACK_MS = 2;

/** Tries at these times met LIMITED 429s in a row, then passed: each gap at least the floor doubled per 429 so far. */
function assertSpaced(peer: string, times: number[]): void {
  assert.equal(times.length, LIMITED + 1, `${peer}: ${LIMITED} answers of 429, then the delivery (got ${times.length} tries)`);
  const gaps = times.slice(1).map((t, i) => Math.round(t - times[i]!));
  gaps.forEach((gap, i) => {
    const least = FLOOR_MS * 2 ** i;
    assert.ok(gap >= least - TIMER_SLACK_MS, `${peer}: try ${i + 2} came ${gap} ms after the 429 before it, under ${least} ms (gaps ${gaps.join(', ')})`);
  });
}

describe('faults: 429 with Retry-After: 0 or a past date waits at least the floor, and backs off', () => {
  let hs: Homeserver;
  let slack: SlackTestServer;
  let x: XTestServer;
  let webhook: TestWebhookServer;
  let hub: TestHub;
  let room: string;

  before(async () => {
    [hs, slack, x, webhook] = await Promise.all([
      startHomeserver(),
      startSlackServer(),
      startXServer(),
      startWebhookServer(),
    ]);
    const bot = hs.registerUser('bot');
    room = hs.createRoom(bot.userId, { name: 'limited' });
    hub = await startTestHub({
      name: 'rate-floor',
      env: peerEnv({ matrix: { hs, bot }, slack: { url: slack.url, token: SLACK_TEST_TOKEN }, x }),
      mapping: {
        '#matrix': { matrix: [room] },
        '#slack': { slack: ['#ops'] },
        '#x': { twitter: ['post'] },
        '#hook': { webhook: [webhook.url('/limited')] },
      },
      // Fewer attempts than 429s: the 429s must not count. backoffMax caps the doubling: above what three 429s reach.
      config: { delivery: { rateLimitFloor: FLOOR_MS, backoffMax: 60_000, maxAttempts: 2 } },
    });
  });

  after(async () => {
    await hub?.stop();
    await Promise.all([slack?.close(), x?.close(), webhook?.close()]);
    await hs?.close();
  });

  async function deliver(group: string, body: string): Promise<void> {
    const id = await hub.send({ to: group, body, format: 'text' });
    const [outcome] = await settled(hub, id, 1, 30_000);
    assert.equal(outcome?.type, 'sent', `${group}: ${outcome?.error}`);
    assert.equal(outcome?.attempts, String(LIMITED + 1), 'every try is recorded; the 429s were not counted against the 2 attempts');
  }

  for (const [label, retryAfter] of [['Retry-After: 0', '0'], ['Retry-After: a past date', PAST]] as const) {
    test(`webhook, ${label}`, async () => {
      webhook.reset();
      webhook.replyNext(...Array.from({ length: LIMITED }, () => ({ status: 429, headers: { 'retry-after': retryAfter } })));
      await deliver('#hook', `webhook ${label}`);
      assertSpaced(`webhook ${label}`, webhook.requests.map((r) => r.at));
    });

    test(`matrix, ${label}`, async () => {
      const before = hs.requests().length;
      hs.rateLimit({ every: 1, retryAfterMs: 0, header: true, retryAfter, times: LIMITED });
      await deliver('#matrix', `matrix ${label}`);
      const sends = hs.requests().slice(before).filter((q) => sendsTo(room).test(`${q.method} ${q.path}`));
      assert.deepEqual(sends.map((q) => q.status), [429, 429, 429, 200]);
      assertSpaced(`matrix ${label}`, sends.map((q) => q.at));
    });
  }

  test('Slack, Retry-After: 0', async () => {
    const before = slack.calls.length;
    slack.rateLimit({ next: LIMITED, retryAfter: 0 });
    await deliver('#slack', 'slack Retry-After: 0');
    const posts = slack.calls.slice(before).filter((c) => c.method === 'chat.postMessage');
    assert.deepEqual(posts.map((c) => c.status), [429, 429, 429, 200]);
    assertSpaced('slack', posts.map((c) => c.at));
  });

  for (const [label, resetInSeconds] of [['a reset now', 0], ['a reset already past', -60]] as const) {
    test(`X, ${label}`, async () => {
      const before = x.calls.length;
      x.rateLimit({ next: LIMITED, resetInSeconds });
      await deliver('#x', `x ${label}`);
      const posts = x.calls.slice(before).filter((c) => c.method === 'POST');
      assert.deepEqual(posts.map((c) => c.status), [429, 429, 429, 201]);
      assertSpaced(`X ${label}`, posts.map((c) => c.at));
    });
  }
});
