/**
 * Redis Cluster: every key of one hub is hash-tagged into one slot
 * (`{prefix}:in` …), so its scripts hold; two hubs with different prefixes
 * live on two shards and each delivers its own messages. A resharding
 * (`redis-cli --cluster reshard`) moves one hub's slot to another node while
 * messages flow: the hub follows MOVED and ASK, and every message is
 * delivered once. Two hubs on one prefix share a target's backlog in order:
 * a published wake-up reaches a worker connected to another node (a
 * hand-over, whose PUBLISH counts only that node's listeners, may not).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Cluster } from 'ioredis';
import { type TestCluster, startCluster } from '../servers/redis/cluster.ts';
import { type TestWebhookServer, startWebhookServer } from '../servers/webhook.ts';
import { httpGet } from '../support/e2e.ts';
import { eventually } from '../support/hub.ts';
import { type HubOn, startHubOn } from './hub-on.ts';

let cluster: TestCluster;
let webhook: TestWebhookServer;
let producer: Cluster | undefined;
const hubs: HubOn[] = [];

before(async () => {
  [cluster, webhook] = await Promise.all([startCluster(), startWebhookServer()]);
});
after(async () => {
  producer?.disconnect();
  await Promise.all(hubs.map((h) => h.stop()));
  await Promise.all([cluster?.close(), webhook?.close()]);
});

/** A prefix whose slot is `slot`: `redis-cli --cluster reshard` moves a node's lowest slot first. */
async function prefixInSlot(slot: number): Promise<string> {
  const base = `t-cl-${randomUUID().slice(0, 6)}`;
  const node = cluster.nodes[0]!.client();
  try {
    for (let from = 0; ; from += 5000) {
      const p = node.pipeline();
      for (let n = from; n < from + 5000; n++) p.call('CLUSTER', 'KEYSLOT', `{${base}-${n}}:in`);
      const replies = (await p.exec())!;
      const hit = replies.findIndex(([, s]) => Number(s) === slot);
      if (hit >= 0) return `${base}-${from + hit}`;
    }
  } finally {
    node.disconnect();
  }
}

async function hubFor(prefix: string, batchSize?: number): Promise<HubOn> {
  const hub = await startHubOn({
    channel: 'webhook',
    mapping: { '#ops': { webhook: [webhook.url(`/${prefix}`)] } },
    config: { delivery: { claimIdle: '3s', ...(batchSize ? { batchSize } : {}) } },
    env: { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: cluster.addresses, HUB_PREFIX: prefix },
  });
  hubs.push(hub);
  return hub;
}

const bodiesAt = (prefix: string) => webhook.requests.filter((r) => r.path === `/${prefix}`).map((r) => String((r.json as { body?: string }).body ?? r.raw));

test('two prefixes on two shards, and a resharding that moves one of them while messages flow', async () => {
  const [first, second] = cluster.nodes;
  const moving = await prefixInSlot(await cluster.firstSlotOf(first!));
  const staying = await prefixInSlot(await cluster.firstSlotOf(second!));
  const [movingSlot, stayingSlot] = [await cluster.slotOf(`{${moving}}:in`), await cluster.slotOf(`{${staying}}:in`)];
  const [hubA, hubB] = [await hubFor(moving), await hubFor(staying)];
  producer = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), { retryDelayOnMoved: 50, retryDelayOnTryAgain: 100 });
  producer.on('error', () => {});

  const send = (prefix: string, i: number) => producer!.xadd(`{${prefix}}:in`, '*', 'to', '#ops', 'body', `${prefix} message ${i}`);
  for (let i = 0; i < 50; i++) await Promise.all([send(moving, i), send(staying, i)]);
  await eventually('both hubs delivering', () => bodiesAt(moving).length >= 50 && bodiesAt(staying).length >= 50, 60_000);

  // Each hub's keys are all in its own slot, on its own node.
  const keysOn = async (port: number, prefix: string) => {
    const node = cluster.nodes.find((n) => n.port === port)!.client();
    try {
      return (await node.keys(`*${prefix}*`)).length;
    } finally {
      node.disconnect();
    }
  };
  const [ownerA, ownerB] = [await cluster.ownerOf(movingSlot), await cluster.ownerOf(stayingSlot)];
  console.log(`  ${moving}: slot ${movingSlot} on :${ownerA.port} (${await keysOn(ownerA.port, moving)} keys); ${staying}: slot ${stayingSlot} on :${ownerB.port} (${await keysOn(ownerB.port, staying)} keys)`);
  assert.notEqual(ownerA.port, ownerB.port, 'two shards');
  for (const node of cluster.nodes.filter((n) => n !== ownerA)) assert.equal(await keysOn(node.port, moving), 0, `no key of ${moving} on :${node.port}`);
  assert.ok((await keysOn(ownerA.port, moving)) > 0);

  // Reshard the moving hub's slot to the third node while its messages flow.
  let sending = true;
  let sent = 50;
  const flow = (async () => {
    while (sending) await send(moving, sent++);
  })();
  const started = performance.now();
  const output = await cluster.reshard(ownerA, cluster.nodes[2]!, 1);
  const reshardMs = performance.now() - started;
  for (let i = 0; i < 50; i++) await send(moving, sent++);
  sending = false;
  await flow;
  const newOwner = await cluster.ownerOf(movingSlot);
  console.log(`  reshard moved slot ${movingSlot} from :${ownerA.port} to :${newOwner.port} in ${Math.round(reshardMs)} ms (${/Moving slot/.test(output) ? 'redis-cli: Moving slot …' : output.slice(-200)}); ${sent} messages of ${moving} sent`);
  assert.equal(newOwner.port, cluster.nodes[2]!.port);

  await eventually(`all ${sent} messages of ${moving} delivered`, () => new Set(bodiesAt(moving)).size >= sent, 60_000);
  const bodies = bodiesAt(moving);
  const duplicates = bodies.length - new Set(bodies).size;
  console.log(`  delivered: ${new Set(bodies).size} of ${sent}, ${duplicates} twice; ${staying}: ${bodiesAt(staying).length} of 50`);
  assert.equal(duplicates, 0);
  assert.equal(new Set(bodiesAt(staying)).size, 50);
  for (const hub of [hubA, hubB]) {
    const ready = await httpGet(hub.port, '/readyz');
    assert.equal(ready.status, 200, ready.body);
  }
  assert.equal(await keysOn(ownerA.port, moving), 0, 'nothing of the moved hub left on its old node');
});

test('two hubs on one prefix share one target: each message once, in the order sent (a worker waiting for the other is woken across the nodes of the cluster)', async () => {
  const prefix = `t-cl-${randomUUID().slice(0, 6)}`;
  // Small reads, so that both workers read parts of one backlog to the one target.
  await hubFor(prefix, 5);
  await hubFor(prefix, 5);
  producer ??= new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), { retryDelayOnMoved: 50, retryDelayOnTryAgain: 100 });
  producer.on('error', () => {});
  const sent = 200;
  const batch = producer.pipeline();
  for (let i = 0; i < sent; i++) batch.xadd(`{${prefix}}:in`, '*', 'to', '#ops', 'body', `${prefix} message ${i}`);
  await batch.exec();
  await eventually(`all ${sent} delivered`, () => bodiesAt(prefix).length >= sent, 60_000);
  assert.deepEqual(bodiesAt(prefix), Array.from({ length: sent }, (_, i) => `${prefix} message ${i}`), 'each once, in the order sent');
});
