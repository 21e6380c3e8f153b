/**
 * Redis Sentinel: the primary is SIGKILLed while messages flow to Matrix, and
 * Sentinel promotes a replica. Every entry the producer's XADD acknowledged
 * and that `WAIT 1 1000` says reached a replica is delivered, none twice (the
 * homeserver keeps one event per transaction id), and the hub follows the new
 * primary without a restart: scripts loaded again there (NOSCRIPT → EVAL),
 * blocking reads resumed, its lease taken again. Sentinel has a password of
 * its own, as the data servers do. Prints the figures.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { type SentinelGroup, startSentinelGroup } from '../servers/redis/sentinel.ts';
import { httpGet, matrixEnv } from '../support/e2e.ts';
import { eventually } from '../support/hub.ts';
import { testPrefix } from '../support/redis.ts';
import { type HubOn, startHubOn } from './hub-on.ts';

const MESSAGES = Number(process.env.FAILOVER_MESSAGES ?? 1000);
const BATCH = 50;
const PASSWORD = 'data-secret-1';
const SENTINEL_PASSWORD = 'sentinel-secret-2';

let group: SentinelGroup;
let hs: Homeserver;
let hub: HubOn | undefined;
let producer: Redis | undefined;

before(async () => {
  [group, hs] = await Promise.all([startSentinelGroup({ password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD, replicas: 2 }), startHomeserver()]);
});
after(async () => {
  producer?.disconnect();
  await hub?.stop();
  await Promise.all([group?.close(), hs?.close()]);
});

test(`Sentinel failover under load: ${MESSAGES} messages to Matrix, the primary SIGKILLed a third of the way`, async () => {
  const bot = hs.registerUser('bot');
  hs.registerUser('owner');
  const room = hs.createRoom(`@owner:${hs.serverName}`, { members: [bot.userId] });
  const prefix = testPrefix('failover');
  hub = await startHubOn({
    channel: 'matrix',
    mapping: { '#ops': { matrix: [room] } },
    config: { delivery: { claimIdle: '3s' } },
    env: {
      // Under Sentinel the URL gives the password (and TLS, database); the sentinels give the host.
      REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:6379`,
      REDIS_SENTINELS: group.addresses,
      REDIS_SENTINEL_MASTER: group.master,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
      HUB_PREFIX: prefix,
      ...matrixEnv(hs, bot),
    },
  });
  producer = new Redis({
    sentinels: group.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
    name: group.master,
    password: PASSWORD,
    sentinelPassword: SENTINEL_PASSWORD,
    maxRetriesPerRequest: null,
    reconnectOnError: (err) => (/^READONLY/.test(err.message) ? 2 : false),
  });
  producer.on('error', () => {});

  // What WAIT costs a producer: batches of 50 XADDs with and without WAIT 1 1000 after each, on the live primary.
  const timed = async (wait: boolean) => {
    const started = performance.now();
    for (let b = 0; b < 40; b++) {
      const p = producer!.pipeline();
      for (let i = 0; i < BATCH; i++) p.xadd(`${prefix}:bench`, 'MAXLEN', '~', 1000, '*', 'f', 'v');
      if (wait) p.call('WAIT', 1, 1000);
      await p.exec();
    }
    return performance.now() - started;
  };
  await timed(false);
  let [plain, waited] = [0, 0];
  for (let round = 0; round < 2; round++) {
    waited += await timed(true);
    plain += await timed(false);
  }
  await producer.del(`${prefix}:bench`);

  const confirmed = new Set<number>();
  const acked = new Set<number>();
  const sentAt = new Map<number, number>();
  let killAt = 0;
  let killing: Promise<void> | undefined;
  for (let from = 0; from < MESSAGES; from += BATCH) {
    if (!killing && from >= MESSAGES / 3) {
      killAt = Date.now();
      killing = group.primary.kill();
    }
    const p = producer.pipeline();
    const batch: number[] = [];
    for (let i = from; i < Math.min(from + BATCH, MESSAGES); i++) {
      batch.push(i);
      sentAt.set(i, Date.now());
      p.xadd(`${prefix}:in`, '*', 'to', '#ops', 'body', `failover message ${i}`, 'id', `p-${i}`);
    }
    p.call('WAIT', 1, 1000);
    const replies = (await p.exec()) ?? [];
    const reached = replies.at(-1)?.[0] === null && Number(replies.at(-1)?.[1]) >= 1;
    batch.forEach((i, j) => {
      if (replies[j]?.[0] !== null) return;
      acked.add(i);
      if (reached) confirmed.add(i);
    });
  }
  await killing;

  const delivered = () => {
    const count = new Map<number, number>();
    for (const event of hs.messages(room)) {
      const match = /failover message (\d+)/.exec(String(event.content.body));
      if (match) count.set(Number(match[1]), (count.get(Number(match[1])) ?? 0) + 1);
    }
    return count;
  };
  await eventually(
    'every confirmed entry delivered',
    () => {
      const got = delivered();
      return [...confirmed].every((i) => got.has(i));
    },
    120_000,
  ).catch((err: Error) => {
    const got = delivered();
    const missing = [...confirmed].filter((i) => !got.has(i));
    console.log(`  confirmed ${confirmed.size}, delivered ${got.size}, missing ${missing.length}: ${missing.slice(0, 20).join(' ')}`);
    console.log(`  hub connection: ${hub!.app.cradle.redis.status}`);
    console.log(hub!.logs.filter((l) => /redis|lease|hub/.test(l)).slice(-30).join('\n'));
    throw err;
  });
  // Whatever else was acknowledged and is on its way: given a moment to arrive, to count it.
  await eventually('the hub idle', async () => (await producer!.xlen(`${prefix}:in`)) === 0, 60_000).catch(() => {});
  const got = delivered();
  const duplicates = [...got.values()].filter((n) => n > 1).length;
  const afterKill = hs.messages(room).filter((e) => {
    const i = Number(/failover message (\d+)/.exec(String(e.content.body))?.[1]);
    return (sentAt.get(i) ?? 0) > killAt;
  });
  const firstAfter = Math.min(...afterKill.map((e) => e.origin_server_ts)) - killAt;
  // Deliveries in flight wait while Redis is away (an attempt begins only once Redis marks it): the first event after the kill is the hub working again.
  const resumed = Math.min(...hs.messages(room).map((e) => e.origin_server_ts).filter((ts) => ts > killAt + 500)) - killAt;
  const sends = hs.requests().filter((r) => r.method === 'PUT' && r.path.includes('/send/') && r.status === 200).length;
  const missingConfirmed = [...confirmed].filter((i) => !got.has(i));
  const lostUnconfirmed = [...acked].filter((i) => !confirmed.has(i) && !got.has(i)).length;
  const newPrimary = await group.currentPrimaryPort();

  console.log(`  messages: ${MESSAGES}; XADD acknowledged: ${acked.size}; confirmed on a replica by WAIT 1 1000: ${confirmed.size}`);
  console.log(`  delivered to Matrix: ${got.size}; confirmed and not delivered: ${missingConfirmed.length}; acknowledged, unconfirmed and lost: ${lostUnconfirmed}`);
  console.log(`  Matrix duplicates: ${duplicates}; sends answered 200: ${sends} (${sends - hs.messages(room).length} a repeated transaction id the homeserver kept once)`);
  console.log(`  from the SIGKILL to the first delivery after it: ${resumed} ms; to the first delivery of a message sent after it (behind the backlog): ${firstAfter} ms; new primary port ${newPrimary} (was ${group.primary.port})`);
  console.log(`  WAIT 1 1000 per batch of ${BATCH} XADDs: ${(waited / 80).toFixed(2)} ms a batch against ${(plain / 80).toFixed(2)} without (×${(waited / plain).toFixed(2)})`);

  assert.notEqual(newPrimary, group.primary.port, 'Sentinel promoted a replica');
  assert.deepEqual(missingConfirmed, [], 'every entry confirmed on a replica is delivered');
  assert.equal(duplicates, 0, 'no message twice in the room');
  // Routed on a promoted replica, which has no script cache of the old primary's: the hub loaded its scripts again there.
  assert.ok(afterKill.length > 0, 'messages sent after the kill are delivered');
  const ready = await httpGet(hub.port, '/readyz');
  assert.equal(ready.status, 200, ready.body);
  assert.ok(!hub.logs.some((l) => l.includes(PASSWORD) || l.includes(SENTINEL_PASSWORD)), 'no password in the logs');
});
