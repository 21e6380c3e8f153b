/**
 * The core of escalation against the real Redis, without plugins: arming in
 * the ROUTE script, the FIRE script's exactly-once claim under concurrent
 * escalators, acknowledgements (whole and per person), and the edge cases
 * (nothing watchable, a hub that was down for several rounds).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { hubConfigSchema, type HubConfig } from '../../core/config/schema.ts';
import { HUB_SCRIPTS } from '../../core/container.ts';
import { acknowledgements } from '../../core/escalation/acknowledge.ts';
import { Escalator } from '../../core/escalation/escalator.ts';
import { routeBatch } from '../../core/ingress/router.ts';
import { MappingStore } from '../../core/mapping/store.ts';
import type { MappingSource } from '../../core/mapping/source.ts';
import type { TargetRules } from '../../core/mapping/validate.ts';
import { Metrics } from '../../core/metrics.ts';
import { connectRedis } from '../../core/redis/connect.ts';
import { type Keys, createKeys } from '../../core/redis/keys.ts';
import { messageStatus } from '../../core/status/message.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';
import { fromPairs } from '../../core/redis/fields.ts';

const rules: ReadonlyMap<string, TargetRules> = new Map(['chat', 'mail'].map((c) => [c, { validate: () => undefined, normalize: (t: string) => t.toLowerCase() }]));
const logger = pino({ level: 'silent' });
const noSource: MappingSource = { description: 'none', connected: true, start: async () => {}, stop: async () => {}, get: async () => null, put: async () => '' };

const MAPPING = {
  '#a': { chat: ['room-a'], escalate: { after: 1000, every: 500, repeat: 2, mail: ['oncall@x.org'] } },
  '#b': { chat: ['room-b'], escalate: { after: 3000, every: 250, repeat: 1, mail: ['ONCALL@x.org', 'boss@x.org'] } },
  '#plain': { chat: ['room-p'] },
  '#people': {
    chat: ['room-q'],
    escalate: { after: 1000, repeat: 3, mail: ['group@x.org'], users: { '@u1:hs': { mail: ['u1@x.org'] }, '@u2:hs': { mail: ['u2@x.org'] } } },
  },
};

describe('escalation core: arm, fire once, acknowledge', () => {
  let redis: Redis;
  let prefix: string;
  let keys: Keys;
  let config: HubConfig;
  let store: MappingStore;
  let metrics: Metrics;
  const extra: Redis[] = [];

  const deps = () => ({ redis, keys, config, logger, metrics });
  const escalator = (watching = ['chat'], conn = redis) => new Escalator({ redis: conn, keys, config, logger, metrics }, { watching: new Set(watching) });

  async function route(fields: Record<string, string>): Promise<string> {
    const id = (await redis.xadd(keys.in, '*', ...Object.entries(fields).flat())) as string;
    const read = (await redis.xreadgroup('GROUP', 'hub', 'test', 'COUNT', 10, 'STREAMS', keys.in, '>')) as Array<[string, Array<[string, string[]]>]>;
    const entries = read[0]![1].map(([eid, flat]) => ({ id: eid, claimed: false, fields: fromPairs(flat) }));
    await routeBatch({ redis, keys, config, mappingStore: store, channels: new Set(['chat', 'mail']) }, entries);
    return id;
  }
  const hash = (id: string) => redis.hgetall(keys.escalation(id));
  const mails = async () => ((await redis.xrange(keys.deliver('mail'), '-', '+')) as Array<[string, string[]]>).map(([, flat]) => fromPairs(flat));
  const counter = async (outcome: string) => (await metrics.escalations.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;

  before(() => {
    redis = connectRedis(REDIS_URL, { name: 'test-escalator', scripts: HUB_SCRIPTS });
  });
  beforeEach(async () => {
    prefix = testPrefix('escalator');
    keys = createKeys(prefix);
    config = hubConfigSchema.parse({ prefix });
    metrics = new Metrics({ defaults: false });
    store = new MappingStore({ redis, keys, logger, targetRules: rules, mappingSource: noSource });
    assert.ok(store.apply({ revision: '1-a', document: { mapping: MAPPING } }, 'redis'));
    await redis.xgroup('CREATE', keys.in, 'hub', '0', 'MKSTREAM');
  });
  afterEach(async () => {
    while (extra.length) extra.pop()!.disconnect();
    await dropPrefix(prefix, redis);
  });
  after(() => redis.disconnect());

  test('armed with the fan-out: due time, routes, the start of the body; not for a group without escalate, nor for a duplicate', async () => {
    const before = Date.now();
    const id = await route({ to: '#a', subject: 'Disk full', body: `<p>${'x'.repeat(400)}</p>`, id: 'p-1' });
    const h = await hash(id);
    assert.equal(h.state, 'armed');
    assert.ok(Number(h.due) >= before + 1000 && Number(h.due) <= Date.now() + 1000);
    assert.equal(await redis.zscore(keys.escalations, id), h.due);
    assert.deepEqual(JSON.parse(h.routes!), [['mail', 'oncall@x.org']]);
    assert.equal(h.subject, 'Disk full');
    assert.equal(h.excerpt!.length, 300);
    assert.ok(h.excerpt!.endsWith('…'));
    assert.ok((await redis.pttl(keys.escalation(id))) > config.recordRetention);

    const plain = await route({ to: '#plain', body: 'fine' });
    assert.deepEqual(await hash(plain), {});
    const duplicate = await route({ to: '#a', body: 'again', id: 'p-1' });
    assert.deepEqual(await hash(duplicate), {});
    assert.equal(await redis.zcard(keys.escalations), 1);
  });

  test('several groups merge: the earliest after, the shortest every, the most repeats, every target once', async () => {
    const id = await route({ to: '#a,#b', body: 'both' });
    const h = await hash(id);
    assert.deepEqual([h.afterMs, h.everyMs, h.repeat], ['1000', '250', '2']);
    assert.deepEqual(JSON.parse(h.routes!), [['mail', 'oncall@x.org'], ['mail', 'boss@x.org']]);
    assert.deepEqual(JSON.parse(h.groups!), ['#a', '#b']);
  });

  test('six escalators polling at once: each due time fires exactly once, then the escalation ends', async () => {
    const id = await route({ to: '#a', subject: 'Disk full', body: 'disk full on db1', format: 'text' });
    const due = Number((await hash(id)).due);
    const escalators = Array.from({ length: 6 }, () => {
      const conn = connectRedis(REDIS_URL, { name: 'test-escalator-n', scripts: HUB_SCRIPTS });
      extra.push(conn);
      return escalator(['chat'], conn);
    });
    const tickAll = async (now: number) => (await Promise.all(escalators.map((e) => e.tick(now)))).reduce((a, b) => a + b, 0);

    assert.equal(await tickAll(due - 1), 0, 'not before its time');
    assert.equal(await tickAll(due), 1);
    assert.equal(await tickAll(due + 10), 0, 'not twice for one due time');
    let h = await hash(id);
    assert.deepEqual([h.round, h.due, h.state], ['1', String(due + 500), 'armed']);
    assert.equal(await tickAll(due + 500), 1);
    assert.equal(await tickAll(due + 1000), 1);
    assert.equal(await tickAll(due + 1500), 0, 'repeat 2: three rounds in all');
    h = await hash(id);
    assert.deepEqual([h.round, h.state, h.due], ['3', 'done', undefined]);
    assert.equal(await redis.zcard(keys.escalations), 0);

    const sent = await mails();
    assert.deepEqual(sent.map((m) => m.delivery), [1, 2, 3].map((r) => `${prefix}:${id}:esc${r}:0`), 'delivery ids derived from the entry and the round');
    const streamIds = ((await redis.xrange(keys.deliver('mail'), '-', '+')) as Array<[string, string[]]>).map(([sid]) => sid);
    assert.deepEqual(await redis.lrange(keys.order('mail', 'oncall@x.org'), 0, -1), streamIds, 'reminders keep their place in the target\'s order');
    assert.deepEqual(sent.map((m) => [m.entry, m.channel, m.target, m.escalation]), [1, 2, 3].map((r) => [id, 'mail', 'oncall@x.org', String(r)]));
    assert.equal(sent[0]!.format, 'html');
    assert.match(sent[0]!.subject!, /^Not read after 1 second: Disk full$/);
    assert.match(sent[0]!.body!, /disk full on db1/);
    assert.match(sent[0]!.body!, /chat room-a: not delivered yet \(queued\)/, 'where, even before the chat worker ran');
    assert.match(sent[2]!.subject!, /^Still not read \(reminder 3 of 3\): Disk full$/);
    const events = ((await redis.xrange(keys.events, '-', '+')) as Array<[string, string[]]>).map(([, f]) => f.join(' '));
    assert.equal(events.filter((e) => e.startsWith('type escalated')).length, 3);
    assert.equal(await counter('sent'), 3);
    assert.equal(await counter('due'), 3);

    const status = await messageStatus(redis, keys, id);
    assert.equal(status?.escalation?.state, 'done');
    assert.deepEqual(status?.deliveries.map((d) => `${d.channel} ${d.state} ${d.escalation ?? ''}`), ['chat queued ', 'mail queued 1', 'mail queued 2', 'mail queued 3']);
  });

  test('an acknowledgement cancels what is due; a stale claim after it changes nothing', async () => {
    const id = await route({ to: '#a', body: 'x', format: 'text' });
    const h = await hash(id);
    const acks = acknowledgements(deps(), 'chat');
    assert.equal(await acks.awaits(id), true);
    await acks.acknowledge(id, { by: '@alice:hs', how: 'reaction' });
    assert.equal(await acks.awaits(id), false);
    // A process that read the escalation before the acknowledgement and claims it now:
    const stale = await redis.escalationFire(3, keys.escalations, keys.escalation(id), keys.events, id, h.version!, Number(h.due), 'fire', '', 'done', 1000, '[]');
    assert.deepEqual(stale, ['gone', 'acknowledged']);
    assert.equal(await escalator().tick(Number(h.due) + 5000), 0);
    assert.deepEqual(await mails(), []);
    const status = await messageStatus(redis, keys, id);
    assert.deepEqual([status?.escalation?.state, status?.escalation?.acknowledged?.by, status?.escalation?.acknowledged?.how], ['acknowledged', '@alice:hs', 'reaction']);
    assert.deepEqual([status?.acknowledged?.by, status?.acknowledged?.channel], ['@alice:hs', 'chat']);
    assert.equal(await counter('cancelled'), 1);
    await acks.acknowledge(id, { by: '@bob:hs', how: 'read' });
    assert.equal(await counter('cancelled'), 1, 'counted once');
    assert.equal((await messageStatus(redis, keys, id))?.acknowledged?.by, '@alice:hs', 'the first acknowledgement is kept');

    // A version that moved since it was read is stale, even when the escalation is still armed.
    const other = await route({ to: '#people', body: 'y', format: 'text' });
    const before = await hash(other);
    await acks.acknowledge(other, { by: '@u1:hs', how: 'read' });
    const retry = await redis.escalationFire(3, keys.escalations, keys.escalation(other), keys.events, other, before.version!, Number(before.due), 'fire', '', 'done', 1000, '[]');
    assert.deepEqual(retry, ['stale']);

    await acks.acknowledge('0-1', { by: '@x:hs', how: 'read' });
    assert.deepEqual(await hash('0-1'), {}, 'no escalation: nothing made up');
  });

  test('per person: after one read, only the people who have not read are nagged; the last read ends it', async () => {
    const id = await route({ to: '#people', body: 'backup failed', format: 'text' });
    const due = Number((await hash(id)).due);
    const acks = acknowledgements(deps(), 'chat');
    await acks.acknowledge(id, { by: '@someone:hs', how: 'read' });
    await acks.acknowledge(id, { by: '@u1:hs', how: 'read' });
    assert.equal((await hash(id)).state, 'armed');
    assert.equal(await escalator().tick(due), 1);
    assert.deepEqual((await mails()).map((m) => m.target), ['u2@x.org'], 'not the group\'s route, not u1');
    assert.match((await mails())[0]!.body!, /read by @someone:hs, @u1:hs/);
    await acks.acknowledge(id, { by: '@u2:hs', how: 'read' });
    const h = await hash(id);
    assert.deepEqual([h.state, h.ackBy, h.ackHow], ['acknowledged', '@u2:hs', 'read']);
    assert.equal(await redis.zcard(keys.escalations), 0);

    const unread = await route({ to: '#people', body: 'again', format: 'text' });
    assert.equal(await escalator().tick(Number((await hash(unread)).due)), 1);
    assert.deepEqual((await mails()).slice(1).map((m) => m.target).sort(), ['group@x.org', 'u1@x.org', 'u2@x.org'], 'nobody read it: everyone');
  });

  test('nothing went where it could be read: the escalation ends without a reminder', async () => {
    const id = await route({ to: '#a', body: 'x', channels: 'mail' });
    assert.equal((await hash(id)).state, undefined, '#a has no mail targets of its own: nothing routed, nothing armed');
    const viaChat = await route({ to: '#a', body: 'x' });
    assert.equal(await escalator(['other']).tick(Number((await hash(viaChat)).due)), 0);
    assert.equal((await hash(viaChat)).state, 'unwatched');
    assert.deepEqual(await mails(), []);
    assert.equal(await counter('due'), 1);
  });

  test('a hub down for several rounds sends one reminder when it is back, not the missed ones at once', async () => {
    const id = await route({ to: '#a', body: 'x', format: 'text' });
    const due = Number((await hash(id)).due);
    const late = due + 5 * 500;
    assert.equal(await escalator().tick(late), 1);
    assert.equal((await hash(id)).due, String(late + 500));
    assert.equal(await escalator().tick(late), 0);
  });
});
