/**
 * A graceful stop (SIGTERM: a deploy, a scale-down) must not cause
 * duplicates: core/cli/start.ts logs "stopping: deliveries in flight finish",
 * and ChannelWorker.stop() is documented as "let deliveries in flight finish
 * (up to graceMs)".
 *
 * FAILS today: ChannelWorker.stop() aborts its one AbortController, and that
 * signal is part of the signal every `deliver()` call gets
 * (`AbortSignal.any([shutdown, timeout])`): requests in flight are cut, the
 * `catch` sees `shutdown.aborted` and returns without settling, and the
 * delivery, which the peer has often accepted already, is made again by
 * another worker after `delivery.claimIdle`. Slack and email have no
 * idempotency key: each graceful stop duplicates what was in flight.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOAD, rigPerTest, until } from './rig.ts';

const rigs = rigPerTest();

/** An HTTP forwarder that answers `delayMs` after the server did: the latency of the real Slack API, during which the message is already posted. */
async function slowAnswers(target: string, delayMs: number): Promise<{ url: string; close(): void }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'content-length', 'connection'].includes(k))) as Record<string, string>;
        const upstream = await fetch(new URL(req.url!.replace(/^\/api\//, ''), target), { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
        const body = Buffer.from(await upstream.arrayBuffer());
        await sleep(delayMs);
        res.writeHead(upstream.status, Object.fromEntries([...upstream.headers].filter(([k]) => !['content-length', 'transfer-encoding', 'connection', 'content-encoding'].includes(k))));
        res.end(body);
      } catch {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('faults: graceful stops', () => {
  test('SIGTERM the email and Slack workers under load, twice: what was in flight is finished, not sent again', async () => {
    // A grace longer than the call timeout: every call in flight at the SIGTERM ends (answered or timed out) before
    // the cut, however slowly the loaded machine runs it; what this test asserts is that none is then sent again.
    const r = await rigs.start({ scenario: 'graceful/email+slack-sigterm', channels: ['email', 'slack'], delivery: { timeout: '10s', stopGrace: '15s' } });
    // Slack answers 100 ms after posting, as the real API takes a while: there is always something in flight.
    const proxy = await slowAnswers(r.slack!.url, 100);
    rigs.onClose(proxy.close);
    r.extraEnv.SLACK_API_URL = proxy.url;
    const slackTargets = ['C024BE91L', 'C0OPS00001', 'G0PRIVATE1', 'U0WILL0001'];
    r.writeMapping(Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { email: [`person${g}@example.org`], slack: [slackTargets[g]!] }])));
    await r.hub();
    let workers = await Promise.all([r.worker('email', { name: 'email worker 1' }), r.worker('slack', { name: 'slack worker 1' })]);
    const stops: Array<{ at: number; exits: string[] }> = [];
    const count = Math.round(LOAD * 0.4);
    await r.produce({
      count,
      perSecond: 250,
      groupOf: (seq) => `#g${seq % 4}`,
      during: async (sent) => {
        for (const fraction of [0.3, 0.65]) {
          await until('load', () => sent() >= count * fraction);
          const at = sent();
          for (const w of workers) w.child.kill('SIGTERM');
          const exits = await Promise.all(workers.map(async (w) => String((await w.exited).code)));
          stops.push({ at, exits });
          workers = await Promise.all([r.worker('email', { name: `email worker ${stops.length + 1}` }), r.worker('slack', { name: `slack worker ${stops.length + 1}` })]);
        }
      },
    });
    r.notes.stops = stops;
    const figures = await r.settle();
    r.report(figures, { duplicates: 'counted' });
    assert.equal(figures.duplicates, 0, `graceful stops duplicated ${JSON.stringify(figures.notes.duplicatesByChannel)}`);
  });
});
