import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startWebhookServer, type TestWebhookServer } from '../servers/webhook.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';

/**
 * An entry whose routing script fails in Redis (here: a key of the wrong type
 * where the target's order list belongs) must not come back at every takeover
 * and must not vanish: it is dead-lettered with the error, and the hub goes on.
 */
describe('ingress: an entry Redis refuses to route', () => {
  let receiver: TestWebhookServer;
  let hub: TestHub;

  before(async () => {
    receiver = await startWebhookServer();
    hub = await startTestHub({
      name: 'route-failure',
      mapping: {
        '#broken': { webhook: [receiver.url('/broken')] },
        '#fine': { webhook: [receiver.url('/fine')] },
        '#half': { webhook: [receiver.url('/first'), receiver.url('/jammed')] },
      },
      config: { plugins: { dirs: ['./plugins'], modules: [] } },
    });
  });
  after(async () => {
    await hub?.stop();
    await receiver?.close();
  });

  test('is dead-lettered with the error once, and later entries are routed', async () => {
    await hub.redis.set(`${hub.prefix}:order:webhook:${receiver.url('/broken')}`, 'not a list');
    const broken = await hub.send({ to: '#broken', body: 'first' });
    const dead = await eventually('a dead letter', async () => (await hub.read('dead')).find((d) => d.entry === broken));
    assert.equal(dead.stage, 'ingress');
    assert.match(dead.reason!, /could not route it .*WRONGTYPE.*report it/);
    await hub.send({ to: '#fine', body: 'second' });
    await eventually('the next entry delivered', () => receiver.requests.some((r) => r.path === '/fine'));
    assert.equal(await hub.redis.xlen(`${hub.prefix}:in`), 0, 'nothing left in the ingress stream');
    assert.equal((await hub.read('dead')).filter((d) => d.entry === broken).length, 1, 'dead-lettered once');
  });

  test('fails whole: the deliveries the script wrote before the refusal are taken back, so none is made beside the dead letter', async () => {
    await hub.redis.set(`${hub.prefix}:order:webhook:${receiver.url('/jammed')}`, 'not a list');
    const half = await hub.send({ to: '#half', body: 'all or nothing' });
    const dead = await eventually('a dead letter', async () => (await hub.read('dead')).find((d) => d.entry === half));
    assert.match(dead.reason!, /could not route it .*WRONGTYPE/);
    const later = await hub.send({ to: '#fine', body: 'after the half' });
    await eventually('the next entry delivered', () => receiver.requests.some((r) => (r.json as { messageId?: string }).messageId === later));
    assert.deepEqual(receiver.requests.filter((r) => r.path === '/first'), [], 'the first target got nothing');
    assert.deepEqual(await hub.redis.lrange(`${hub.prefix}:order:webhook:${receiver.url('/first')}`, 0, -1), []);
  });
});
