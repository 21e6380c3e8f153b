/**
 * Throttle under faults: a storm of repeats over several keys to a throttled
 * group, with the active hub SIGKILLed three times (a standby hub running all
 * along, so two digesters race for every window), and with Redis SIGKILLed
 * and started again (AOF `always`). Every message is accounted
 * for exactly once at each target, either sent at once or counted in one
 * digest; no digest is sent twice; no held message is left out of a digest.
 * The shape (10,000 messages over 10 keys in 60 s, 10 s window, three
 * kills) is scaled down to keep the suite fast: `THROTTLE_MESSAGES`,
 * `THROTTLE_SECONDS` and `THROTTLE_WINDOW` scale it back up.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromPairs } from '../../core/redis/fields.ts';
import { type PrivateRedis, startPrivateRedis } from '../support/private-redis.ts';
import { type HubProcess, killAll } from '../support/processes.ts';
import { RESULTS_FILE, Rig, until } from './rig.ts';

const MESSAGES = Number(process.env.THROTTLE_MESSAGES ?? 1500);
const SECONDS = Number(process.env.THROTTLE_SECONDS ?? 8);
const WINDOW = process.env.THROTTLE_WINDOW ?? '2s';
const KEYS = 10;

let rig: Rig | undefined;
let privateRedis: PrivateRedis | undefined;
afterEach(async () => {
  const problems = (await rig?.close()) ?? [];
  await privateRedis?.close();
  rig = undefined;
  privateRedis = undefined;
  if (problems.length) throw new Error(problems.join('\n'));
});
after(killAll);

type Fault = { kind: 'hub kills' } | { kind: 'redis restart'; redis: PrivateRedis };

describe('faults: throttle', () => {
  test(`${MESSAGES} messages over ${KEYS} keys in ${SECONDS} s to a group with a ${WINDOW} window; the active hub SIGKILLed three times`, async () => {
    rig = await Rig.start({ scenario: 'throttle/hub-kills', channels: ['matrix'] });
    await storm(rig, { kind: 'hub kills' });
  });

  test(`the same storm with Redis SIGKILLed and started again (AOF always) in the middle of it`, async () => {
    privateRedis = await startPrivateRedis({ durable: true });
    rig = await Rig.start({ scenario: 'throttle/redis-restart', channels: ['matrix'], redisUrl: privateRedis.url });
    await storm(rig, { kind: 'redis restart', redis: privateRedis });
  });
});

async function storm(r: Rig, fault: Fault): Promise<void> {
  const t0 = performance.now();
  const rooms = [r.room(), r.room()];
  writeFileSync(join(r.dir, 'mapping.json'), JSON.stringify({ _id: 'ccs.notifications', mapping: { '#storm': { matrix: rooms, throttle: { window: WINDOW } } } }));
  await Promise.all([r.hub('hub 1'), r.hub('hub 2 (standby)'), r.worker('matrix')]);
  const started = performance.now();
  const keyOf = (seq: number) => `k${seq % KEYS}`;
  const kills: Array<{ at: number; what: string }> = [];
  await r.produce({
    count: MESSAGES,
    perSecond: MESSAGES / SECONDS,
    groupOf: () => '#storm',
    // The producer's own id: an XADD whose answer a Redis crash lost is sent again, and the hub folds the copy.
    entryOf: (seq) => ({ fields: { to: '#storm', key: keyOf(seq), subject: `storm ${keyOf(seq)}`, body: `seq=${seq} key=${keyOf(seq)}`, format: 'text', id: `${r.prefix}-${seq}` }, deliveredTo: ['#storm'] }),
    during: async (sent) => {
      if (fault.kind === 'redis restart') {
        await until('load', () => sent() >= MESSAGES * 0.5);
        await fault.redis.kill();
        kills.push({ at: sent(), what: 'redis SIGKILLed, down 1.5 s' });
        await sleep(1500);
        await fault.redis.start();
        return;
      }
      for (const fraction of [0.25, 0.5, 0.75]) {
        await until('load', () => sent() >= MESSAGES * fraction);
        const victim = await activeHub(r);
        await victim.kill('SIGKILL');
        kills.push({ at: sent(), what: victim.name.replace(`${r.scenario} `, '') });
        // Not waited for: the standby takes over meanwhile, and the new one starts as the load goes on.
        void r.hub(`hub ${kills.length + 2}`).catch(() => {});
      }
    },
  });
  const produced = performance.now();
  // Every window closes (the last ones a window after the last message) and every digest is delivered.
  await until('every window closed and every delivery made', async () => {
    const [windows, ingress, deliver] = await Promise.all([
      r.redis.zcard(`${r.prefix}:digests`),
      r.redis.xlen(`${r.prefix}:in`),
      r.redis.xlen(`${r.prefix}:deliver:matrix`),
    ]);
    return windows === 0 && ingress === 0 && deliver === 0;
  });

  const settled = performance.now();
  // Redis's side: folded entries, digests sent.
  const events = ((await r.redis.xrange(`${r.prefix}:events`, '-', '+')) as Array<[string, string[]]>).map(([, flat]) => fromPairs(flat));
  const digestEvents = events.filter((e) => e.type === 'digest');
  const digestTimes = new Map<string, number>();
  for (const d of digestEvents) digestTimes.set(d.entry!, (digestTimes.get(d.entry!) ?? 0) + 1);
  const folded = events.filter((e) => e.type === 'folded');
  const heldInNoDigest = folded.filter((f) => !digestTimes.has(f.digest!)).length;
  const foldedPerDigest = new Map<string, number>();
  for (const f of folded) foldedPerDigest.set(f.digest!, (foldedPerDigest.get(f.digest!) ?? 0) + 1);
  const countMismatch = digestEvents.filter((d) => Number(d.count) !== (foldedPerDigest.get(d.entry!) ?? 0)).length;

  // The rooms' side: per room and key, what went out at once and what the digests counted.
  let digestsSentTwice = [...digestTimes.values()].reduce((sum, n) => sum + n - 1, 0);
  let overLimit = 0;
  let unaccounted = 0;
  const perTarget: Record<string, { direct: number; digests: number; folded: number }> = {};
  for (const room of rooms) {
    const direct = new Map<string, number>();
    const digests = new Map<string, number>();
    const counted = new Map<string, number>();
    const latestSeen = new Set<string>();
    for (const event of r.hs.messages(room)) {
      const text = String(event.content.body ?? '');
      const digest = /^(\d+) more: storm (k\d+)/.exec(text);
      if (digest) {
        const key = digest[2]!;
        const latest = /seq=(\d+) key=/.exec(text.split('The latest')[1] ?? '')?.[1];
        if (latestSeen.has(`${key} ${latest}`)) digestsSentTwice += 1;
        latestSeen.add(`${key} ${latest}`);
        digests.set(key, (digests.get(key) ?? 0) + 1);
        counted.set(key, (counted.get(key) ?? 0) + Number(digest[1]));
      } else {
        const key = /key=(k\d+)/.exec(text)?.[1] ?? '?';
        direct.set(key, (direct.get(key) ?? 0) + 1);
      }
    }
    for (let k = 0; k < KEYS; k++) {
      const key = `k${k}`;
      const sent = [...r.sent.values()].filter((s) => keyOf(s.seq) === key).length;
      const d = direct.get(key) ?? 0;
      const g = digests.get(key) ?? 0;
      const c = counted.get(key) ?? 0;
      if (d > 1 + g) overLimit += 1;
      unaccounted += Math.abs(sent - d - c);
      const total = (perTarget[`room ${rooms.indexOf(room) + 1}`] ??= { direct: 0, digests: 0, folded: 0 });
      total.direct += d;
      total.digests += g;
      total.folded += c;
    }
  }
  const figures = {
    scenario: r.scenario,
    messages: r.sent.size,
    keys: KEYS,
    window: WINDOW,
    kills,
    digests: digestTimes.size,
    folded: folded.length,
    perTarget,
    targetsKeysOverOnePlusDigests: overLimit,
    digestsSentTwice,
    heldInNoDigest,
    digestCountMismatch: countMismatch,
    messagesUnaccountedAtTargets: unaccounted,
    seconds: { start: Math.round((started - t0) / 100) / 10, produce: Math.round((produced - started) / 100) / 10, settle: Math.round((settled - produced) / 100) / 10 },
  };
  const line = `[faults] ${r.scenario}: ${figures.messages} messages over ${KEYS} keys, window ${WINDOW}, kills ${JSON.stringify(kills)}; ` +
    `${figures.digests} digests folding ${figures.folded} held messages; per target ${JSON.stringify(perTarget)}; ` +
    `per target per key over 1 + digests ${overLimit}, digests sent twice ${digestsSentTwice}, held in no digest ${heldInNoDigest}, ` +
    `digest counts off ${countMismatch}, messages unaccounted at targets ${unaccounted} — seconds ${JSON.stringify(figures.seconds)}`;
  console.log(line);
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  appendFileSync(RESULTS_FILE, `${JSON.stringify({ at: new Date().toISOString(), line, ...figures })}\n`);

  assert.equal(kills.length, fault.kind === 'hub kills' ? 3 : 1);
  assert.ok(folded.length > 0, 'messages were held');
  assert.equal(overLimit, 0, 'per target per key: sent at once ≤ 1 + digests');
  assert.equal(digestsSentTwice, 0, 'digests sent twice');
  assert.equal(heldInNoDigest, 0, 'held messages in no digest');
  assert.equal(countMismatch, 0, 'each digest counts what it folded');
  assert.equal(unaccounted, 0, 'every message reached every target, at once or counted in one digest');
}

/** The hub holding the lease (the one routing), or else the oldest hub still running. */
async function activeHub(r: Rig): Promise<HubProcess> {
  const holder = await r.redis.get(`${r.prefix}:hub:lease`);
  const hubs = r.processes.filter((p) => p.running && / hub /.test(`${p.name} `));
  return hubs.find((h) => holder && h.output.some((line) => line.includes(`"consumer":"${holder}"`))) ?? hubs[0]!;
}
