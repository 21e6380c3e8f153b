/**
 * A worker's one call per tick (core/runtime/tick-call.ts): a target's next
 * delivery asks its turn in the script call that settles the one before it,
 * so a chain of deliveries to one target costs one command each, not two
 * (counted with MONITOR, on the worker's own connection), and still goes in
 * order, each settled once. What Redis refuses in a call holds back only the
 * target it touches.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { HUB_SCRIPTS } from '../../core/container.ts';
import type { Delivery, DeliveryReceipt } from '../../core/plugin-api.ts';
import { connectRedis } from '../../core/redis/connect.ts';
import { tickScripts } from '../../core/runtime/tick-call.ts';
import { ChannelWorker } from '../../core/runtime/worker.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { monitorRedis } from '../support/monitor.ts';
import { REDIS_URL } from '../support/redis.ts';

const TARGET = 'https://hooks.example.org/chain';
const CHAIN = 20;
const FAN = ['a', 'b', 'c'].map((name) => `https://hooks.example.org/fan-${name}`);

/** A sender that answers at once and lists what it made, each as `label` names it, in the order made. */
function recorder(label: (delivery: Delivery) => string) {
  const made: string[] = [];
  const sender = {
    async deliver(delivery: Delivery): Promise<DeliveryReceipt> {
      made.push(label(delivery));
      return { peerId: `peer-${made.length}` };
    },
  };
  return { made, sender };
}

describe("a worker's tick call", () => {
  let hub: TestHub;
  const connections: Redis[] = [];
  const stops: Array<() => void> = [];

  before(async () => {
    hub = await startTestHub({ name: 'tick-call', mapping: { '#ops': { webhook: [TARGET] }, '#fan': { webhook: FAN } }, start: { channels: [], http: false } });
  });
  after(async () => {
    for (const c of connections) c.disconnect();
    for (const stop of stops) stop();
    await hub?.stop();
  });

  test(`${CHAIN} deliveries to one target: each asks its turn in the call that settles the one before, ${CHAIN + 1} calls in all, in order`, async () => {
    const { keys, config, logger, metrics, redactor } = hub.app.cradle;
    const entries: string[] = [];
    for (let i = 1; i <= CHAIN; i += 1) entries.push(await hub.send({ to: '#ops', body: `chain ${i}` }));
    await eventually('the chain routed', async () => (await hub.redis.xlen(keys.deliver('webhook'))) === CHAIN);

    const redis = connectRedis(REDIS_URL, { name: 'tick-call-worker', scripts: HUB_SCRIPTS });
    connections.push(redis);
    await redis.ping();
    const port = redis.stream.localPort;
    const tickSha = createHash('sha1').update(tickScripts.workerTick).digest('hex');
    let calls = 0;
    const monitor = await monitorRedis(REDIS_URL, ({ args, source }) => {
      if (!source.endsWith(`:${port}`)) return;
      const [command, script] = [String(args[0]).toLowerCase(), String(args[1])];
      if ((command === 'evalsha' && script === tickSha) || (command === 'eval' && script.includes('begin_one'))) calls += 1;
    });
    stops.push(monitor.stop);

    const { made, sender } = recorder((delivery) => delivery.message.body);
    const worker = new ChannelWorker({ redis, keys, config, logger, metrics, redactor, consumerName: 'tick-call' }, 'webhook', sender, 1);
    worker.start();
    try {
      await eventually('the chain made and settled', async () => made.length === CHAIN && (await hub.redis.xlen(keys.deliver('webhook'))) === 0, 30_000);
    } finally {
      await worker.stop(1000);
    }
    await monitor.caughtUp(hub.redis);
    assert.deepEqual(made, Array.from({ length: CHAIN }, (_, i) => `chain ${i + 1}`), 'made in order, each once');
    const sent = (await hub.read('events')).filter((e) => e.type === 'sent' && entries.includes(e.entry!)).map((e) => e.entry);
    assert.deepEqual(sent, entries, 'settled in order, each once');
    // The first turn alone, then each settle with the next turn, then the last settle alone: not a turn and a settle each.
    assert.equal(calls, CHAIN + 1, `the worker made ${calls} script calls for a chain of ${CHAIN}`);
  });

  test('a turn Redis refuses (an order list of the wrong type) holds back its own target only: the others in the same calls go on', async () => {
    const { keys, config, logger, metrics, redactor } = hub.app.cradle;
    const [broken, ...fine] = FAN;
    const entries: string[] = [];
    for (let i = 1; i <= 3; i += 1) entries.push(await hub.send({ to: '#fan', body: `fan ${i}` }));
    await eventually('the fan-out routed', async () => (await hub.redis.xlen(keys.deliver('webhook'))) === 9);
    // An operator's mistake: the broken target's order list is now a string, so asking its turn fails in Redis.
    const order = keys.order('webhook', broken!);
    await hub.redis.del(order);
    await hub.redis.set(order, 'not a list');

    const { made, sender } = recorder((delivery) => `${delivery.target} ${delivery.message.body}`);
    // Every first turn in one call (one read, concurrency 3): the refused one must not take the others with it.
    const worker = new ChannelWorker({ redis: hub.app.cradle.redis, keys, config, logger, metrics, redactor, consumerName: 'tick-call-fan' }, 'webhook', sender, 3);
    worker.start();
    try {
      await eventually('the fine targets served', () => made.length === 6, 30_000);
      assert.deepEqual(made.filter((m) => m.startsWith(broken!)), [], 'nothing made to the target whose turn Redis refuses');
      for (const target of fine) assert.deepEqual(made.filter((m) => m.startsWith(target!)), [1, 2, 3].map((i) => `${target} fan ${i}`), `${target}: made in order, each once`);
      const refused = hub.logs.filter((l) => l.includes('cannot ask Redis whether a delivery may be made now'));
      assert.ok(refused.some((l) => l.includes(broken!) && l.includes('WRONGTYPE')), 'the worker said which target and why');
      assert.deepEqual(refused.filter((l) => !l.includes(broken!)), [], 'no other target was refused with it');
      // Mended: the broken target's deliveries follow, in order.
      await hub.redis.del(order);
      await eventually('the mended target served', () => made.length === 9, 30_000);
      assert.deepEqual(made.filter((m) => m.startsWith(broken!)), [1, 2, 3].map((i) => `${broken} fan ${i}`), 'made in order once mended');
      await eventually('all settled', async () => (await hub.redis.xlen(keys.deliver('webhook'))) === 0);
    } finally {
      await worker.stop(1000);
    }
  });
});
