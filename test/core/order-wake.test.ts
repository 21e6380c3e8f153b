/**
 * Per-target order across workers (README, "Guarantees") without a wait that
 * costs a poll: a delivery whose older sibling is being made by another
 * worker goes as soon as that one is settled, because the settling wakes it.
 * The workers here ask again on their own only every ten minutes, so a
 * delivery made within the test's deadline was woken.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Delivery, DeliveryReceipt } from '../../core/plugin-api.ts';
import { ChannelWorker, type WorkerDeps } from '../../core/runtime/worker.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';

const TARGET = 'https://hooks.example.org/ops';
const TEN_MINUTES = 600_000;

describe('order across workers: the settling of a head wakes the delivery waiting for it', () => {
  let hub: TestHub;
  const workers: ChannelWorker[] = [];

  before(async () => {
    // One entry per read, so that the deliveries of one target are spread over the two workers.
    hub = await startTestHub({ name: 'order-wake', mapping: { '#ops': { webhook: [TARGET] } }, config: { delivery: { batchSize: 1 } }, start: { channels: [], http: false } });
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop(1000)));
    await hub?.stop();
  });

  test('a worker waiting for two older deliveries held by another makes its own right after them, not ten minutes later', async () => {
    const { redis, keys, config, logger, metrics, redactor } = hub.app.cradle;
    const made: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const worker = (name: string): ChannelWorker => {
      const deps: WorkerDeps = { redis, keys, config, logger, metrics, redactor, consumerName: name };
      const sender = {
        async deliver(delivery: Delivery): Promise<DeliveryReceipt> {
          if (delivery.message.body === 'first') await gate;
          made.push(`${name}: ${delivery.message.body}`);
          return { peerId: `${name}-${made.length}` };
        },
      };
      const w = new ChannelWorker(deps, 'webhook', sender, 1, { orderPollMs: TEN_MINUTES });
      workers.push(w);
      w.start();
      return w;
    };
    const stream = keys.deliver('webhook');
    const pendingTo = async (consumer: string, entry: string) => {
      const rows = (await redis.xpending(stream, 'webhook', '-', '+', 100, consumer)) as Array<[string]>;
      const routed = await hub.read('deliver:webhook');
      const id = routed.find((d) => d.entry === entry)?.id;
      return id !== undefined && rows.some(([pending]) => pending === id);
    };

    // A reads the first and holds it at the peer; it reads the second as well (its reader blocked before B's).
    worker('worker-a');
    const first = await hub.send({ to: '#ops', body: 'first' });
    await eventually('worker A holding the first', () => pendingTo('worker-a', first));
    worker('worker-b');
    await eventually('worker B reading', async () => (await redis.call('CLIENT', 'LIST') as string).split('\n').some((c) => c.includes('name=hub:worker-b:webhook ') && c.includes('cmd=xreadgroup')));
    const second = await hub.send({ to: '#ops', body: 'second' });
    await eventually('worker A holding the second', () => pendingTo('worker-a', second));
    const third = await hub.send({ to: '#ops', body: 'third' });
    await eventually('worker B holding the third', () => pendingTo('worker-b', third));
    await eventually('worker B waiting for the older ones', async () => (await redis.smembers(keys.orderWaiters('webhook', TARGET))).includes(keys.wake('webhook', 'worker-b')));

    release();
    await eventually('the three made, in order', () => made.length === 3, 30_000);
    assert.deepEqual(made, ['worker-a: first', 'worker-a: second', 'worker-b: third']);
    const sent = (await hub.read('events')).filter((e) => e.type === 'sent').map((e) => e.entry);
    assert.deepEqual(sent, [first, second, third], 'settled in order');
  });
});
