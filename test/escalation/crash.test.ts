/**
 * Escalation across a crash: `hub start` as a child process, killed with
 * SIGKILL between the send and the due time (it holds the watcher's lease and
 * has nothing in memory that matters), then another `hub start` on the same
 * Redis. The reminder still goes out exactly once, and the new process's
 * watcher takes over the sync (after the dead one's lease ran out) from the
 * saved position, so a read after the crash still stops the nagging. Times
 * are checked against the schedule Redis recorded, not the test's clock.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { fromPairs } from '../../core/redis/fields.ts';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { type TestSmtpServer, startSmtpServer } from '../servers/smtp.ts';
import { eventually } from '../support/hub.ts';
import { matrixEnv } from '../support/e2e.ts';
import { hubEnv, killAll, spawnHub } from '../support/processes.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

const enc = encodeURIComponent;

describe('escalation: a hub killed between send and due time', () => {
  let hs: Homeserver;
  let smtp: TestSmtpServer;
  let redis: Redis;
  let dir: string;
  const prefix = testPrefix('esc-crash');

  before(async () => {
    [hs, smtp] = await Promise.all([startHomeserver(), startSmtpServer({ user: 'hub', password: 'test-password-1' })]);
    redis = new Redis(REDIS_URL);
    dir = mkdtempSync(join(tmpdir(), 'hub-esc-crash-'));
  });
  after(async () => {
    await killAll();
    await dropPrefix(prefix, redis);
    redis?.disconnect();
    rmSync(dir, { recursive: true, force: true });
    await smtp?.close();
    await hs?.close();
  });

  test('SIGKILL before the due time: exactly one reminder from the next process, and a later read is still seen', async () => {
    const bot = hs.registerUser('bot');
    const alice = hs.registerUser('alice');
    const room = hs.createRoom(bot.userId, { members: [alice.userId] });
    const oncall = 'oncall-crash@example.org';
    writeFileSync(join(dir, 'mapping.json'), JSON.stringify({
      _id: 'ccs.notifications',
      // Due 6 s after routing, well after the kill; the second round 20 s later, well after the read.
      mapping: { '#admins': { matrix: [room], escalate: { after: '6s', every: '20s', repeat: 1, email: [oncall] } } },
    }));
    // HUB_CONFIG is loaded with import(): plain data.
    const config = { channels: { email: { tlsCa: smtp.ca }, matrix: { syncTimeoutMs: 1000, syncLeaseMs: 2000 } } };
    writeFileSync(join(dir, 'hub.config.mjs'), `export default ${JSON.stringify(config)};\n`);
    const env = hubEnv(prefix, join(dir, 'mapping.json'), {
      HUB_CONFIG: join(dir, 'hub.config.mjs'),
      ...matrixEnv(hs, bot),
      SMTP_URL: smtp.url(),
      EMAIL_FROM: 'hub@example.org',
    });
    const mails = () => smtp.messages.filter((m) => m.envelope.to.includes(oncall));

    const first = spawnHub(['start'], { env, name: 'hub A' });
    await first.waitFor(/"msg":"started"/); // the ingress group starts at 0: nothing sent from now on is missed
    const id = (await redis.xadd(`${prefix}:in`, '*', 'to', '#admins', 'subject', 'Replica lag', 'body', 'db2 is 10 minutes behind')) as string;
    const sent = await eventually('the notification in the room', async () => {
      const events = (await redis.xrange(`${prefix}:events`, '-', '+')).map(([, f]) => f.join(' '));
      return events.find((e) => e.includes(`entry ${id}`) && e.includes('type sent'));
    });
    const eventId = / peer (\S+)/.exec(sent)?.[1];
    assert.ok(eventId);
    await eventually('the watcher\'s saved sync position', async () => (await redis.get(`${prefix}:plugin:matrix:sync`)) ?? undefined);
    assert.ok(await redis.get(`${prefix}:plugin:matrix:sync-lease`), 'hub A holds the sync lease');
    await first.kill('SIGKILL');
    const escalation = () => redis.hgetall(`${prefix}:escalation:${id}`);
    const atKill = await escalation();
    assert.deepEqual([atKill.state, atKill.round], ['armed', '0'], 'no reminder fired before the kill');
    const due = Number(await redis.zscore(`${prefix}:escalations`, id));
    const routedAt = Number((JSON.parse((await redis.hget(`${prefix}:msg:${id}`, 'meta')) ?? '{}') as { receivedAt?: number }).receivedAt);
    assert.equal(due, routedAt + 6000, 'still due, 6 s after routing');

    const second = spawnHub(['start'], { env, name: 'hub B' });
    await eventually('the reminder', () => mails().length >= 1, 60_000);
    const fired = async () =>
      ((await redis.xrange(`${prefix}:events`, '-', '+')) as Array<[string, string[]]>)
        .map(([eid, flat]) => ({ at: Number(eid.split('-')[0]), f: fromPairs(flat) }))
        .filter(({ f }) => f.type === 'escalated' && f.entry === id);
    const [round1] = await fired();
    assert.ok(round1 && round1.f.round === '1' && round1.at >= due, 'fired by the next process, not before its due time');

    // Hub B's watcher takes the lease once A's has run out, and resumes the sync.
    await eventually('hub B syncing', async () => (await redis.get(`${prefix}:plugin:matrix:sync-lease`)) !== null && second.output.some((l) => l.includes('syncing for read receipts')), 30_000);
    const res = await fetch(`${hs.url}/_matrix/client/v3/rooms/${enc(room)}/receipt/m.read/${enc(eventId)}`, {
      method: 'POST', headers: { Authorization: `Bearer ${alice.accessToken}`, 'Content-Type': 'application/json' }, body: '{}',
    });
    assert.equal(res.status, 200);
    await eventually('acknowledged', async () => (await redis.hget(`${prefix}:escalation:${id}`, 'state')) === 'acknowledged', 30_000);
    assert.equal(await redis.zscore(`${prefix}:escalations`, id), null, 'no reminder can fire any more');
    assert.deepEqual((await fired()).map(({ f }) => f.round), ['1'], 'one round fired');
    assert.equal(mails().length, 1, 'exactly one reminder: none lost to the crash, none doubled, none after the read');
    await second.kill('SIGTERM'); // a graceful stop (stop() would leave its 5 s grace timer running)
    assert.equal(await redis.get(`${prefix}:plugin:matrix:sync-lease`), null, 'a stopped watcher gives its lease back');
    hs.assertNoSpecViolations();
  });
});
