/**
 * Per-target order across workers (README, "Guarantees") without a wait that
 * costs a poll: a delivery whose older siblings are being made by another
 * worker goes as soon as they are settled, because the settling wakes it.
 * The workers here ask again on their own only every ten minutes, so a
 * delivery made within the test's deadline was woken. A Redis user without
 * pub/sub (the README's ACL line before wake-ups) still gets every delivery
 * made, in order, by asking again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { HUB_SCRIPTS } from '../../core/container.ts';
import type { Delivery, DeliveryReceipt } from '../../core/plugin-api.ts';
import { connectRedis } from '../../core/redis/connect.ts';
import { ChannelWorker, type WorkerDeps } from '../../core/runtime/worker.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';

const TARGET = 'https://hooks.example.org/ops';
const TEN_MINUTES = 600_000;

describe('order across workers: the settling of a head wakes the delivery waiting for it', () => {
  let hub: TestHub;
  const workers: ChannelWorker[] = [];
  const connections: Redis[] = [];
  const users: string[] = [];

  before(async () => {
    // One entry per read, so that the deliveries of one target are spread over the two workers.
    hub = await startTestHub({ name: 'order-wake', mapping: { '#ops': { webhook: [TARGET] } }, config: { delivery: { batchSize: 1 } }, start: { channels: [], http: false } });
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop(1000)));
    for (const c of connections) c.disconnect();
    for (const user of users) await hub.redis.call('ACL', 'DELUSER', user);
    await hub?.stop();
  });

  /**
   * Worker A holds the first delivery at the peer and reads the second as
   * well; worker B reads the third and must wait for both. Resolves with what
   * was made, in the order it was made, once the first is let go.
   */
  async function twoWorkersOneTarget(tag: string, redis: Redis, orderPollMs: number): Promise<{ made: string[]; entries: string[] }> {
    const { keys, config, logger, metrics, redactor } = hub.app.cradle;
    const made: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const start = (name: string) => {
      const deps: WorkerDeps = { redis, keys, config, logger, metrics, redactor, consumerName: `${tag}-${name}` };
      const sender = {
        async deliver(delivery: Delivery): Promise<DeliveryReceipt> {
          if (delivery.message.body === `${tag} first`) await gate;
          made.push(`${name}: ${delivery.message.body}`);
          return { peerId: `${name}-${made.length}` };
        },
      };
      const worker = new ChannelWorker(deps, 'webhook', sender, 1, { orderPollMs });
      workers.push(worker);
      worker.start();
    };
    const stream = keys.deliver('webhook');
    const pendingTo = async (name: string, entry: string) => {
      const rows = (await hub.redis.xpending(stream, 'webhook', '-', '+', 100, `${tag}-${name}`)) as Array<[string]>;
      const id = (await hub.read('deliver:webhook')).find((d) => d.entry === entry)?.id;
      return id !== undefined && rows.some(([pending]) => pending === id);
    };
    const reading = async (name: string) =>
      ((await hub.redis.call('CLIENT', 'LIST')) as string).split('\n').some((c) => c.includes(`name=hub:${tag}-${name}:webhook `) && c.includes('cmd=xreadgroup'));

    start('A');
    const first = await hub.send({ to: '#ops', body: `${tag} first` });
    await eventually('worker A holding the first', () => pendingTo('A', first));
    await eventually('worker A reading again', () => reading('A'));
    start('B');
    await eventually('worker B reading', () => reading('B'));
    // A's reader blocked before B's: the second goes to A, the third to B.
    const second = await hub.send({ to: '#ops', body: `${tag} second` });
    await eventually('worker A holding the second', () => pendingTo('A', second));
    const third = await hub.send({ to: '#ops', body: `${tag} third` });
    await eventually('worker B holding the third', () => pendingTo('B', third));
    await eventually('worker B waiting for the older ones', async () => (await hub.redis.smembers(keys.orderWaiters('webhook', TARGET))).includes(keys.wake('webhook', `${tag}-B`)));
    release();
    await eventually('the three made', () => made.length === 3, 30_000);
    await eventually('the three settled', async () => (await hub.redis.xlen(stream)) === 0);
    // Stopped, so that the next scenario's deliveries reach only its own workers.
    await Promise.all(workers.splice(0).map((w) => w.stop(1000)));
    return { made, entries: [first, second, third] };
  }

  test('a worker waiting for two older deliveries held by another makes its own right after them, not ten minutes later', async () => {
    const { made, entries } = await twoWorkersOneTarget('woken', hub.app.cradle.redis, TEN_MINUTES);
    assert.deepEqual(made, ['A: woken first', 'A: woken second', 'B: woken third']);
    const sent = (await hub.read('events')).filter((e) => e.type === 'sent' && entries.includes(e.entry!)).map((e) => e.entry);
    assert.deepEqual(sent, entries, 'settled in order');
  });

  test('a Redis user that may not use pub/sub: the waiting delivery is still made in order, and the worker says why it polls', async () => {
    const user = `${hub.prefix}-nopubsub`;
    users.push(user);
    // The README's ACL line as it was before wake-ups: no channels, no SUBSCRIBE or PUBLISH.
    await hub.redis.call('ACL', 'SETUSER', user, 'on', '>secret-pw', 'resetkeys', `~${hub.prefix}:*`, 'resetchannels', '-@all', '+@read', '+@write', '+@connection', '-@dangerous', '+eval', '+evalsha', '+info', '+time', '+role', '+client|setname');
    const restricted = connectRedis(`redis://${encodeURIComponent(user)}:secret-pw@127.0.0.1:6379`, { name: 'order-wake-restricted', scripts: HUB_SCRIPTS });
    connections.push(restricted);
    const { made, entries } = await twoWorkersOneTarget('polled', restricted, TEN_MINUTES);
    assert.deepEqual(made, ['A: polled first', 'A: polled second', 'B: polled third']);
    const sent = (await hub.read('events')).filter((e) => e.type === 'sent' && entries.includes(e.entry!)).map((e) => e.entry);
    assert.deepEqual(sent, entries, 'each settled, recorded and in order');
    assert.ok(hub.logs.some((l) => l.includes('may not subscribe to wake-ups') && l.includes('NOPERM')), 'the worker said why it asks again instead');
  });
});
