/**
 * Peers that fail, under load: the homeserver answering 500s, holding requests
 * (timeouts) and rate limiting every send for seconds (a 429 storm longer than
 * the attempts allow); the SMTP server cutting connections and answering 421;
 * Slack answering 429 with Retry-After. Each delivery arrives once the peer
 * recovers, or is dead-lettered after its attempts with the reason; a 429
 * storm spends no attempt (HUB_MAX_ATTEMPTS is low on purpose).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LOAD, rigPerTest, until } from './rig.ts';

const rigs = rigPerTest();

const SENDS = /^PUT \/_matrix\/client\/v3\/rooms\/[^/]+\/send\//;
const MAX_ATTEMPTS = 4;

describe('faults: peers that fail', () => {
  test('homeserver: 500 bursts, held requests, a 429 storm longer than the attempts, and one room that always fails', async () => {
    // A low floor for rate-limited waits, so that one delivery meets more 429s than it has attempts within the storm.
    const r = await rigs.start({ scenario: 'peers/matrix', channels: ['matrix'], env: { HUB_MAX_ATTEMPTS: String(MAX_ATTEMPTS) }, delivery: { timeout: '1s', rateLimitFloor: '200ms' } });
    const rooms = Array.from({ length: 8 }, () => r.room());
    const broken = r.room();
    r.writeMapping({
      ...Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])),
      '#broken': { matrix: [rooms[0]!, broken] },
    });
    // Every send to `broken` is answered 500, for good: those deliveries must be dead-lettered after their attempts.
    const brokenEvery = 50;
    r.hs.failNext(Math.ceil(LOAD / brokenEvery) * MAX_ATTEMPTS + 10, { status: 500, errcode: 'M_UNKNOWN', error: 'broken room' }, new RegExp(`^PUT .*/rooms/${encodeURIComponent(broken)}/send/`));
    await r.hub();
    await r.worker('matrix');
    const storm = { retryAfterMs: 400 };
    /** Per send (one delivery: its transaction id is in the path), how often it was answered 429, and whether it arrived. */
    const sendsByTxn = () => {
      const byTxn = new Map<string, { limited: number; ok: boolean }>();
      for (const q of r.hs.requests()) {
        if (!SENDS.test(`${q.method} ${q.path}`)) continue;
        const t = byTxn.get(q.path) ?? { limited: 0, ok: false };
        if (q.status === 429) t.limited += 1;
        if (q.status === 200) t.ok = true;
        byTxn.set(q.path, t);
      }
      return byTxn;
    };
    await r.produce({
      count: LOAD,
      perSecond: 300,
      groupOf: (seq) => (seq % brokenEvery === 0 ? '#broken' : `#g${seq % 4}`),
      during: async (sent) => {
        await until('load', () => sent() >= LOAD * 0.1);
        r.hs.failNext(60, { status: 500 }, SENDS);
        await until('load', () => sent() >= LOAD * 0.3);
        r.hs.failNext(16, 'timeout', SENDS);
        await until('load', () => sent() >= LOAD * 0.5);
        // The storm lasts until some delivery has met more 429s than it has attempts (seconds, or longer on a loaded machine).
        r.hs.rateLimit({ every: 1, retryAfterMs: storm.retryAfterMs, header: false });
        await until('a delivery answered 429 more often than it has attempts', () => [...sendsByTxn().values()].some((t) => t.limited > MAX_ATTEMPTS + 1));
        r.hs.rateLimit(undefined);
      },
    });
    const figures = await r.settle();
    const statuses: Record<string, number> = {};
    for (const q of r.hs.requests()) if (SENDS.test(`${q.method} ${q.path}`)) statuses[q.status || 'held'] = (statuses[q.status || 'held'] ?? 0) + 1;
    r.notes.sendAnswers = statuses;
    r.notes.storm = `every send 429 (retry_after_ms ${storm.retryAfterMs}, floor 200 ms doubled per 429 in a row) until a delivery met ${MAX_ATTEMPTS + 2}, ${MAX_ATTEMPTS} attempts allowed`;
    // A delivery that met more 429s than it has attempts, and still arrived: the storm spent no attempt.
    const most429s = Math.max(...[...sendsByTxn().values()].filter((t) => t.ok).map((t) => t.limited));
    r.notes.most429sBeforeArriving = most429s;
    r.report(figures);
    const reasons = Object.keys(figures.reasons);
    assert.ok(reasons.every((reason) => !/429|M_LIMIT_EXCEEDED|rate/i.test(reason)), `a 429 dead-lettered a delivery: ${reasons.join('; ')}`);
    assert.ok(most429s > MAX_ATTEMPTS, `the storm should hit one delivery more often than it has attempts (most: ${most429s})`);
    const brokenPairs = [...r.sent.values()].filter((s) => s.groups[0] === '#broken').length;
    assert.equal(figures.reasons['delivery: gave up after 4 attempts; the last error was: sending to <room>: the homeserver answered 500 M_UNKNOWN: broken room'], brokenPairs);
  });

  test('SMTP: connections cut at MAIL FROM, 421 at MAIL FROM and at the greeting; a mailbox that stays busy (450) is dead-lettered', async () => {
    const r = await rigs.start({ scenario: 'peers/smtp', channels: ['email'], env: { HUB_MAX_ATTEMPTS: '6' } });
    const smtp = r.smtp!;
    const boxes = Array.from({ length: 8 }, (_, i) => `person${i}@example.org`);
    const busy = 'busy@example.org';
    smtp.rejectRecipient(busy, { code: 450, message: '4.2.1 mailbox busy, try later' });
    r.writeMapping({
      ...Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { email: boxes.slice(g * 2, g * 2 + 2) }])),
      '#busy': { email: [boxes[0]!, busy] },
    });
    await r.hub();
    await r.worker('email');
    const count = Math.round(LOAD * 0.66);
    await r.produce({
      count,
      perSecond: 200,
      groupOf: (seq) => (seq % 100 === 0 ? '#busy' : `#g${seq % 4}`),
      during: async (sent) => {
        await until('load', () => sent() >= count * 0.2);
        smtp.dropNextMessages(30);
        await until('load', () => sent() >= count * 0.45);
        smtp.failNextMessages(60);
        await until('load', () => sent() >= count * 0.7);
        smtp.failNextConnections(20);
      },
    });
    const figures = await r.settle();
    r.notes.smtpConnections = smtp.connections;
    r.report(figures, { duplicates: 'counted' });
    const busyMessages = [...r.sent.values()].filter((s) => s.groups[0] === '#busy').length;
    const { pairs } = await r.deadLetters();
    assert.equal([...pairs].filter((p) => p.startsWith(`email ${busy} `)).length, busyMessages, 'every delivery to the busy mailbox is dead-lettered');
    assert.match(Object.keys(figures.reasons).join('\n'), /gave up after 6 attempts; the last error was: the SMTP server deferred the recipient: 450 4\.2\.1 mailbox busy/);
    for (const reason of Object.keys(figures.reasons)) assert.match(reason, /gave up after 6 attempts.*(4\d\d|Connection closed|ECONNECTION)/);
  });

  test('Slack: a 429 storm with Retry-After spends no attempt; a channel the bot is not in is dead-lettered at once', async () => {
    const r = await rigs.start({ scenario: 'peers/slack', channels: ['slack'], env: { HUB_MAX_ATTEMPTS: '2' } });
    const slack = r.slack!;
    const targets = ['C024BE91L', 'C0OPS00001', 'G0PRIVATE1', 'U0WILL0001'];
    r.writeMapping({
      '#a': { slack: targets.slice(0, 2) },
      '#b': { slack: targets.slice(2, 4) },
      '#outside': { slack: [targets[0]!, 'C0NOTMEMB1'] },
    });
    await r.hub();
    await r.worker('slack');
    const count = Math.round(LOAD * 0.66);
    await r.produce({
      count,
      perSecond: 200,
      groupOf: (seq) => (seq % 50 === 0 ? '#outside' : seq % 2 ? '#a' : '#b'),
      during: async (sent) => {
        await until('load', () => sent() >= count * 0.3);
        slack.rateLimit({ next: 30, retryAfter: 1 });
      },
    });
    const figures = await r.settle();
    r.notes.slack429 = slack.calls.filter((c) => c.status === 429).length;
    r.report(figures, { duplicates: 'counted' });
    const outside = [...r.sent.values()].filter((s) => s.groups[0] === '#outside').length;
    assert.equal(figures.dead, outside, 'only the deliveries to the channel the bot is not in are dead-lettered');
  });
});
