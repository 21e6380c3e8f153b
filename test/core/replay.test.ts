/**
 * Dead-letter replay against a running hub: two replays that read the same
 * letters at the same time (two operators, or one command run twice) replay
 * each letter once, while new messages to the same target are routed between
 * them; the target's order list stays in stream order, and every delivery
 * reaches the receiver once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { HUB_SCRIPTS } from '../../core/container.ts';
import { replayOf } from '../../core/journal/dead-letter.ts';
import { type Letter, replayLetters } from '../../core/journal/replay.ts';
import { connectRedis } from '../../core/redis/connect.ts';
import { compareEntryIds } from '../../core/runtime/worker.ts';
import { startWebhookServer, type TestWebhookServer } from '../servers/webhook.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { REDIS_URL } from '../support/redis.ts';

describe('dead-letter replay: each letter once, however many replays run', () => {
  let receiver: TestWebhookServer;
  let hub: TestHub;
  let other: Redis;

  before(async () => {
    receiver = await startWebhookServer();
    hub = await startTestHub({
      name: 'replay',
      mapping: { '#a': { webhook: [receiver.url('/a')] } },
      config: { plugins: { dirs: [], modules: ['./plugins/webhook/index.ts'] } },
    });
    other = connectRedis(REDIS_URL, { name: 'test-replay-other', scripts: HUB_SCRIPTS });
  });
  after(async () => {
    other?.disconnect();
    await hub?.stop();
    await receiver?.close();
  });

  const deliveryOf = (r: { headers: Record<string, unknown> }) => String(r.headers['x-hub-delivery']);
  const deadLetters = async (): Promise<Letter[]> => (await hub.read('dead')).map(({ id, ...fields }) => ({ id, fields }));

  test('two replays of the same letters at once, with routing in between: each letter enqueued once, the order list in stream order', async () => {
    // Twenty deliveries the receiver refuses for good, and five messages to a group the mapping does not have yet.
    receiver.replyNext(...Array.from({ length: 20 }, () => ({ status: 410, body: 'gone for now' })));
    for (let i = 0; i < 20; i += 1) await hub.send({ to: '#a', body: `refused ${i}` });
    for (let i = 0; i < 5; i += 1) await hub.send({ to: '#later', body: `later ${i}` });
    const letters = await eventually('25 dead letters', async () => {
      const all = await deadLetters();
      return all.length === 25 && all;
    });
    hub.writeMapping({ '#a': { webhook: [receiver.url('/a')] }, '#later': { webhook: [receiver.url('/later')] } });
    await eventually('the new mapping in force', () => hub.app.cradle.mappingStore.current?.groups.has('#later'));

    const sending = (async () => {
      for (let i = 0; i < 20; i += 1) await hub.send({ to: '#a', body: `new ${i}` });
    })();
    const [first, second] = await Promise.all([replayLetters(hub.app.cradle.redis, hub.app.cradle.keys, letters), replayLetters(other, hub.app.cradle.keys, letters)]);
    const list = await hub.redis.lrange(`${hub.prefix}:order:webhook:${receiver.url('/a')}`, 0, -1);
    await sending;

    const replayed = [...first!, ...second!].filter((r) => r.entry);
    assert.equal(replayed.length, 25, 'each letter replayed by exactly one of the two');
    assert.deepEqual(new Set(replayed.map((r) => r.letter)), new Set(letters.map((l) => l.id)));
    assert.equal(await hub.redis.xlen(`${hub.prefix}:dead`), 0);
    assert.ok(list.every((id, i) => i === 0 || compareEntryIds(list[i - 1]!, id) < 0), `the order list in stream order: ${list.join(' ')}`);

    const refusedIds = new Set(letters.filter((l) => l.fields.stage === 'delivery').map((l) => l.fields.delivery));
    await eventually('every delivery made', () => receiver.requests.filter((r) => r.path === '/later').length === 5 && receiver.requests.filter((r) => r.path === '/a').length === 60, 30_000);
    const accepted = receiver.requests.slice(20).filter((r) => r.path === '/a' && refusedIds.has(deliveryOf(r)));
    assert.equal(accepted.length, 20, 'each refused delivery sent again once');
    assert.equal(new Set(accepted.map(deliveryOf)).size, 20, 'with its own delivery id, so the receiver can tell');
    await eventually('every order list emptied', async () => (await hub.redis.keys(`${hub.prefix}:order:*`)).length === 0);
  });

  test('a letter already replayed is skipped, not sent again', async () => {
    receiver.replyNext({ status: 410 });
    await hub.send({ to: '#a', body: 'refused once' });
    const [letter] = await eventually('the dead letter', async () => {
      const all = await deadLetters();
      return all.length === 1 && all;
    });
    const once = await replayLetters(hub.app.cradle.redis, hub.app.cradle.keys, [letter!]);
    const again = await replayLetters(hub.app.cradle.redis, hub.app.cradle.keys, [letter!]);
    assert.match(once[0]!.entry ?? '', /^\d+-\d+$/);
    assert.deepEqual(again, [{ letter: letter!.id }]);
  });

  test('a letter whose target list Redis refuses stays a letter, with nothing enqueued, and the next letters go on', async () => {
    const keys = hub.app.cradle.keys;
    const target = receiver.url('/jammed');
    const fields = { stage: 'delivery', reason: 'gone', delivery: `${hub.prefix}:9-0:0`, entry: '9-0', channel: 'webhook', target, to: '#a', body: 'jammed', format: 'text' };
    const id = (await hub.redis.xadd(keys.dead, '*', ...Object.entries(fields).flat())) as string;
    await hub.redis.set(keys.order('webhook', target), 'not a list');
    const fine = { ...fields, delivery: `${hub.prefix}:9-1:0`, entry: '9-1', target: receiver.url('/fine'), body: 'fine' };
    const fineId = (await hub.redis.xadd(keys.dead, '*', ...Object.entries(fine).flat())) as string;
    const [refused, replayedToo] = await replayLetters(hub.app.cradle.redis, keys, [{ id, fields }, { id: fineId, fields: fine }]);
    assert.match(refused?.refused ?? '', /WRONGTYPE/);
    assert.equal(refused?.entry, undefined);
    assert.ok(replayedToo?.entry, 'the next letter is replayed all the same');
    await eventually('the next letter delivered', () => receiver.requests.some((r) => r.path === '/fine'));
    const queued = (await hub.read('deliver:webhook')).filter((e) => e.delivery === fields.delivery);
    assert.deepEqual(queued, [], 'nothing enqueued');
    assert.equal((await hub.redis.xrange(keys.dead, id, id)).length, 1, 'the letter is still there');
    await hub.redis.del(keys.order('webhook', target));
    const [replayed] = await replayLetters(hub.app.cradle.redis, keys, [{ id, fields }]);
    assert.ok(replayed?.entry);
    await eventually('the delivery', () => receiver.requests.some((r) => r.path === '/jammed'));
  });

  test('what a letter becomes again: the delivery entry\'s fields, or the producer\'s, with the producer\'s own `id`', () => {
    const delivery = { stage: 'delivery', reason: 'gone', attempts: '1', error: 'E: x', at: 'now', delivery: 'p:1-0:0', entry: '1-0', channel: 'webhook', target: 'http://x/a', address: 'HTTP://x/./a', to: '#a', body: 'b', format: 'text', id: 'p-9' };
    assert.deepEqual(replayOf(delivery), {
      stage: 'delivery',
      channel: 'webhook',
      target: 'http://x/a',
      fields: { delivery: 'p:1-0:0', entry: '1-0', channel: 'webhook', target: 'http://x/a', address: 'HTTP://x/./a', to: '#a', body: 'b', format: 'text', id: 'p-9' },
    });
    const ingress = { stage: 'ingress', reason: 'no group', entry: '2-0', at: 'now', to: '#later', body: 'b', id: 'p-10', priority: 'high' };
    assert.deepEqual(replayOf(ingress), { stage: 'ingress', fields: { to: '#later', body: 'b', id: 'p-10' } });
  });
});
