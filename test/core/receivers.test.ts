/**
 * One receiver under two spellings is one target. `http://…/same` and
 * `HTTP://…/./same` are the same URL to the webhook plugin's normalizer, so the
 * messages of two groups that write it differently keep one order at that
 * receiver, and `hub status` names one target. A group name typed in another
 * Unicode form (`é` as one code point or as `e` + a combining accent) is the
 * same group.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { messageStatus } from '../../core/status/message.ts';
import { startWebhookServer, type TestWebhookServer } from '../servers/webhook.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';

const COMPOSED = '#caf\u00e9';
const DECOMPOSED = '#cafe\u0301';

describe('receivers: one target under two spellings, one group under two Unicode forms', () => {
  let receiver: TestWebhookServer;
  let hub: TestHub;
  let plain: string;
  let shouted: string;

  before(async () => {
    receiver = await startWebhookServer();
    plain = receiver.url('/same');
    shouted = plain.replace('http://', 'HTTP://').replace('/same', '/./same');
    hub = await startTestHub({
      name: 'receivers',
      mapping: {
        '#plain': { webhook: [plain] },
        '#shouted': { webhook: [shouted] },
        [DECOMPOSED]: { webhook: [receiver.url('/cafe')] },
      },
      config: { plugins: { dirs: [], modules: ['./plugins/webhook/index.ts'] }, delivery: { concurrency: 8 } },
    });
  });
  after(async () => {
    await hub?.stop();
    await receiver?.close();
  });

  const seqOf = (body: unknown) => Number(/seq=(\d+)/.exec(String((body as { body?: string }).body))?.[1]);

  test('messages to both spellings arrive at the receiver once each, in the order they were sent', async () => {
    // Slow answers now and then, so that two targets running side by side would overtake each other.
    receiver.replyNext(...Array.from({ length: 400 }, (_, i) => ({ status: 200, delayMs: i % 4 === 0 ? 25 : 0 })));
    const count = 200;
    const ids: string[] = [];
    for (let seq = 1; seq <= count; seq += 1) ids.push(await hub.send({ to: seq % 2 ? '#plain' : '#shouted', body: `seq=${seq}`, format: 'text' }));
    await eventually(`${count} deliveries`, () => receiver.requests.filter((r) => r.path === '/same').length >= count, 60_000);
    const seqs = receiver.requests.filter((r) => r.path === '/same').map((r) => seqOf(r.json));
    assert.deepEqual(seqs, Array.from({ length: count }, (_, i) => i + 1), 'each once, in order');

    // The plugin is given the target as written; the hub names the receiver once, normalized.
    const targets = new Set(receiver.requests.filter((r) => r.path === '/same').map((r) => (r.json as { target: string }).target));
    assert.deepEqual(targets, new Set([plain, shouted]));
    for (const id of [ids[0]!, ids[1]!]) {
      const status = await messageStatus(hub.redis, hub.app.cradle.keys, id);
      assert.deepEqual(status?.deliveries.map((d) => `${d.channel} ${d.target} ${d.state}`), [`webhook ${plain} sent`]);
    }
    const sent = (await hub.read('events')).filter((e) => e.type === 'sent' && ids.includes(e.entry!));
    assert.deepEqual(new Set(sent.map((e) => e.target)), new Set([plain]));
    await eventually('every order list emptied as its deliveries settle', async () => (await hub.redis.keys(`${hub.prefix}:order:*`)).length === 0);
  });

  test('a group name in either Unicode form reaches the group', async () => {
    const composed = await hub.send({ to: COMPOSED, body: 'composed' });
    const decomposed = await hub.send({ to: `${DECOMPOSED},${COMPOSED}`, body: 'decomposed' });
    await eventually('both delivered', () => receiver.requests.filter((r) => r.path === '/cafe').length >= 2);
    const delivered = receiver.requests.filter((r) => r.path === '/cafe').map((r) => (r.json as { messageId: string; to: string[] }));
    assert.deepEqual(delivered.map((d) => d.messageId), [composed, decomposed]);
    assert.deepEqual(delivered[1]!.to, [COMPOSED], 'one group, named in one form');
    assert.deepEqual((await hub.read('dead')).filter((d) => d.entry === composed || d.entry === decomposed), []);
  });
});
