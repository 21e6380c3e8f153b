/**
 * Per-target order across workers (README, "Guarantees") without a wait that
 * costs a poll: a delivery whose older siblings another worker is making is
 * handed to that worker, which makes it right after them; when that worker
 * does not listen, the delivery waits and the settling of its older siblings
 * wakes it (once: when the last of them is settled). The workers here ask again on their own only every ten minutes,
 * so a delivery made within the test's deadline was handed over or woken. A
 * Redis user without pub/sub (the README's ACL line before wake-ups) still
 * gets every delivery made, in order, by asking again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { HUB_SCRIPTS } from '../../core/container.ts';
import type { Delivery, DeliveryReceipt } from '../../core/plugin-api.ts';
import { connectRedis } from '../../core/redis/connect.ts';
import { ChannelWorker, type WorkerDeps } from '../../core/runtime/worker.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { readmeAclRule } from '../support/redis.ts';

const TARGET = 'https://hooks.example.org/ops';
const TEN_MINUTES = 600_000;

describe('order across workers: a delivery goes to the worker making its older siblings, or is woken when they are settled', () => {
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
   * Workers `<tag>-A`, `<tag>-B` on the webhook channel at concurrency 1 (a read-ahead of 8), asking again on
   * their own only every ten minutes, their reads served in the order they blocked; the delivery of `heldBody` waits at the peer until `release()`.
   * `made` lists what each made, in the order made.
   */
  function gatedWorkers(tag: string, heldBody: string) {
    const { keys, config, logger, metrics, redactor } = hub.app.cradle;
    const made: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const start = (name: 'A' | 'B', redis: Redis, batchSize = config.delivery.batchSize) => {
      // Reads that block for ten minutes: a read that timed out and blocked again would go behind the other worker's.
      const workerConfig = { ...config, ingress: { ...config.ingress, blockMs: TEN_MINUTES }, delivery: { ...config.delivery, batchSize } };
      const deps: WorkerDeps = { redis, keys, config: workerConfig, logger, metrics, redactor, consumerName: `${tag}-${name}` };
      const sender = {
        async deliver(delivery: Delivery): Promise<DeliveryReceipt> {
          if (delivery.message.body === heldBody) await gate;
          made.push(`${name}: ${delivery.message.body}`);
          return { peerId: `${name}-${made.length}` };
        },
      };
      const worker = new ChannelWorker(deps, 'webhook', sender, 1, { orderPollMs: TEN_MINUTES });
      workers.push(worker);
      worker.start();
    };
    return { made, start, release: () => release() };
  }

  /** How many deliveries are pending to `consumer` (none before the group exists). */
  async function pendingCount(consumer: string): Promise<number> {
    return ((await hub.redis.xpending(hub.app.cradle.keys.deliver('webhook'), 'webhook', '-', '+', 1000, consumer).catch(() => [])) as unknown[]).length;
  }

  /** What the wake channel of `consumer` carries from now on. */
  async function wakeChannelOf(consumer: string): Promise<string[]> {
    const listener = hub.redis.duplicate();
    connections.push(listener);
    const messages: string[] = [];
    listener.on('message', (_channel: string, message: string) => messages.push(message));
    await listener.subscribe(hub.app.cradle.keys.wake('webhook', consumer));
    return messages;
  }

  /** Those of `entries` settled as sent, in the order the events say. */
  async function settled(entries: string[]): Promise<string[]> {
    return (await hub.read('events')).filter((e) => e.type === 'sent' && entries.includes(e.entry!)).map((e) => e.entry!);
  }

  /**
   * Worker A holds the first delivery at the peer and reads the second as
   * well; worker B reads the third, which must go after both: B either hands
   * it to A (`handed`) or waits for both (`waits`). Then `more` deliveries
   * follow, and `whileHeld` looks at the pending lists before the first is
   * let go. Resolves with what was made, in the order it was made.
   */
  async function twoWorkersOneTarget(
    tag: string,
    connections: { A: Redis; B: Redis },
    third: 'handed' | 'waits',
    { more = 0, whileHeld }: { more?: number; whileHeld?: (pendingCount: (name: string) => Promise<number>) => Promise<void> } = {},
  ): Promise<{ made: string[]; entries: string[] }> {
    const { keys } = hub.app.cradle;
    const { made, start: startWorker, release } = gatedWorkers(tag, `${tag} first`);
    const start = (name: 'A' | 'B') => startWorker(name, connections[name]);
    const stream = keys.deliver('webhook');
    const pendingTo = async (name: string, entry: string) => {
      // (Before the first worker's group exists: nothing pending.)
      const rows = (await hub.redis.xpending(stream, 'webhook', '-', '+', 100, `${tag}-${name}`).catch(() => [])) as Array<[string]>;
      const id = (await hub.read('deliver:webhook')).find((d) => d.entry === entry)?.id;
      return id !== undefined && rows.some(([pending]) => pending === id);
    };
    // Blocked in XREADGROUP now (flags b), not merely having read: blocked readers are served in the order they blocked.
    const reading = async (name: string) =>
      ((await hub.redis.call('CLIENT', 'LIST')) as string).split('\n').some((c) => c.includes(`name=hub:${tag}-${name}:webhook `) && c.includes('cmd=xreadgroup') && / flags=\w*b/.test(c));

    // Stopped whatever happens, so that the next scenario's deliveries reach only its own workers.
    try {
      start('A');
      const first = await hub.send({ to: '#ops', body: `${tag} first` });
      await eventually('worker A holding the first', () => pendingTo('A', first));
      await eventually('worker A reading again', () => reading('A'));
      start('B');
      await eventually('worker B reading', () => reading('B'));
      // A's reader blocked before B's: the second goes to A, the third to B.
      const second = await hub.send({ to: '#ops', body: `${tag} second` });
      await eventually('worker A holding the second', () => pendingTo('A', second));
      const last = await hub.send({ to: '#ops', body: `${tag} third` });
      if (third === 'handed') await eventually('the third handed to worker A', () => pendingTo('A', last));
      else await eventually('worker B waiting for the older ones', async () => (await hub.redis.smembers(keys.orderWaiters('webhook', TARGET))).includes(keys.wake('webhook', `${tag}-B`)));
      const later: string[] = [];
      for (let i = 1; i <= more; i += 1) later.push(await hub.send({ to: '#ops', body: `${tag} more ${i}` }));
      await whileHeld?.((name) => pendingCount(`${tag}-${name}`));
      release();
      await eventually('all made', () => made.length === 3 + more, 30_000);
      await eventually('all settled', async () => (await hub.redis.xlen(stream)) === 0);
      return { made, entries: [first, second, last, ...later] };
    } finally {
      await Promise.all(workers.splice(0).map((w) => w.stop(1000)));
    }
  }

  /** A Redis user of the README's ACL line, less the rules `without` picks; its connection is closed after the tests. */
  async function restrictedConnection(name: string, without: (rule: string) => boolean): Promise<Redis> {
    const user = `${hub.prefix}-${name}`;
    users.push(user);
    const rules = readmeAclRule(hub.prefix, 'secret-pw').slice(2);
    await hub.redis.call('ACL', 'SETUSER', user, ...rules.filter((rule) => !without(rule)));
    const redis = connectRedis(`redis://${encodeURIComponent(user)}:secret-pw@127.0.0.1:6379`, { name: `order-wake-${name}`, scripts: HUB_SCRIPTS });
    connections.push(redis);
    return redis;
  }

  test('a delivery whose two older siblings another worker is making is handed to that worker, which makes it right after them', async () => {
    const redis = hub.app.cradle.redis;
    const { made, entries } = await twoWorkersOneTarget('handed', { A: redis, B: redis }, 'handed');
    assert.deepEqual(made, ['A: handed first', 'A: handed second', 'A: handed third']);
    assert.deepEqual(await settled(entries), entries, 'settled in order, each once');
  });

  test('a worker that holds as many deliveries as it may is handed no more: the rest wait at the other worker, and every one is made once, in order', async () => {
    const redis = hub.app.cradle.redis;
    // Concurrency 1 and batches of 1: a read-ahead of 8, and at most 8 × 8 deliveries held.
    const limit = 64;
    const { made, entries } = await twoWorkersOneTarget('bounded', { A: redis, B: redis }, 'handed', {
      more: 80,
      whileHeld: async (pendingCount) => {
        await eventually('worker A holding its bound', async () => (await pendingCount('A')) >= limit);
        // B then holds what it reads (its own read-ahead), waiting, instead of handing it over.
        await eventually('worker B holding the deliveries A may not take', async () => (await pendingCount('B')) >= 8);
        const atA = await pendingCount('A');
        assert.ok(atA <= limit + 1, `worker A holds ${atA} deliveries, more than its bound of ${limit}`);
      },
    });
    const bodies = ['bounded first', 'bounded second', 'bounded third', ...Array.from({ length: 80 }, (_, i) => `bounded more ${i + 1}`)];
    assert.deepEqual(made.map((m) => m.slice(3)), bodies, 'made in the order sent, each once');
    assert.deepEqual(await settled(entries), entries, 'settled in order, each once');
  });

  test('deliveries queued behind one handed over follow it in one step, not each with a begin of its own', async () => {
    const { keys, redis } = hub.app.cradle;
    const { made, start, release } = gatedWorkers('queued', 'queued 1');
    const stream = keys.deliver('webhook');
    // What worker A's wake channel carries: each message one hand-over.
    const handOvers = await wakeChannelOf('queued-A');

    // A (a read-ahead of 8 at concurrency 1) holds the first eight, the first at the peer, and reads no more.
    start('A', redis, 1);
    const entries: string[] = [];
    for (let i = 1; i <= 8; i += 1) entries.push(await hub.send({ to: '#ops', body: `queued ${i}` }));
    await eventually('worker A holding eight', async () => (await pendingCount('queued-A')) === 8);
    for (let i = 9; i <= 18; i += 1) entries.push(await hub.send({ to: '#ops', body: `queued ${i}` }));
    await eventually('the ten newer ones routed', async () => (await hub.redis.xlen(stream)) === 18);
    // B reads the ten at once: its first is handed to A, and the nine behind it follow in one step.
    start('B', redis, 20);
    await eventually('the ten handed to worker A', async () => (await pendingCount('queued-A')) === 18 && (await pendingCount('queued-B')) === 0);
    release();
    await eventually('all made', () => made.length === 18, 30_000);
    await Promise.all(workers.splice(0).map((w) => w.stop(1000)));
    assert.deepEqual(made, Array.from({ length: 18 }, (_, i) => `A: queued ${i + 1}`), 'all made by the worker holding the first, in order, each once');
    assert.deepEqual(await settled(entries), entries, 'settled in order, each once');
    assert.deepEqual(handOvers.map((ids) => ids.split(' ').length), [1, 9], 'one hand-over for the first, one for the nine queued behind it');
  });

  test('a worker waiting for two older deliveries held by one that does not listen makes its own right after them, not ten minutes later', async () => {
    // A may publish (its settling wakes B) but not subscribe: it cannot be handed anything.
    const deaf = await restrictedConnection('deaf', (rule) => rule === '+subscribe');
    const wakeUps = await wakeChannelOf('woken-B');
    const { made, entries } = await twoWorkersOneTarget('woken', { A: deaf, B: hub.app.cradle.redis }, 'waits');
    assert.deepEqual(made, ['A: woken first', 'A: woken second', 'B: woken third']);
    // Not when the first is settled (the second, A's, heads the list then): B would only ask and wait again.
    assert.deepEqual(wakeUps, [hub.app.cradle.keys.order('webhook', TARGET)], 'woken once, when its own delivery heads the list');
    assert.deepEqual(await settled(entries), entries, 'settled in order');
  });

  test('a Redis user that may not use pub/sub: the waiting delivery is still made in order, and the worker says why it polls', async () => {
    // The README's ACL line as it was before wake-ups: no channels, no SUBSCRIBE or PUBLISH.
    const restricted = await restrictedConnection('nopubsub', (rule) => rule.startsWith('&') || rule === '+subscribe' || rule === '+publish');
    const { made, entries } = await twoWorkersOneTarget('polled', { A: restricted, B: restricted }, 'waits');
    assert.deepEqual(made, ['A: polled first', 'A: polled second', 'B: polled third']);
    assert.deepEqual(await settled(entries), entries, 'each settled, recorded and in order');
    assert.ok(hub.logs.some((l) => l.includes('may not subscribe to wake-ups') && l.includes('NOPERM')), 'the worker said why it asks again instead');
  });
});
