/**
 * Redis over TLS (rediss://) with a private CA and an ACL user, as managed
 * Redis is run: the hub works with the ACL rule the README gives (read from
 * the README itself), and each way it can be wrong is one sentence: a wrong
 * password, an expired certificate, a CA the hub does not trust, a user
 * without a command the hub needs. An evicting maxmemory-policy is said in the
 * log, on /readyz and in a metric, at start and when it changes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { HubError } from '../../core/errors.ts';
import { connectRedis, whenReady } from '../../core/redis/connect.ts';
import type { RedisProcess } from '../servers/redis/process.ts';
import { type TestCertificates, makeCertificates, startTlsRedis } from '../servers/redis/tls.ts';
import { type TestWebhookServer, startWebhookServer } from '../servers/webhook.ts';
import { httpGet } from '../support/e2e.ts';
import { eventually } from '../support/hub.ts';
import { readmeAclRule, testPrefix } from '../support/redis.ts';
import { type HubOn, startHubOn } from './hub-on.ts';

const PASSWORD = 'tls-acl-secret-4711';
let certs: TestCertificates;
let redis: RedisProcess;
let expired: RedisProcess;
let admin: Redis;
let webhook: TestWebhookServer;
const hubs: HubOn[] = [];

before(async () => {
  certs = await makeCertificates();
  [redis, expired, webhook] = await Promise.all([startTlsRedis(certs, certs.server), startTlsRedis(certs, certs.expired), startWebhookServer()]);
  admin = redis.client();
});
after(async () => {
  await Promise.all(hubs.map((h) => h.stop()));
  admin?.disconnect();
  await Promise.all([redis?.close(), expired?.close(), webhook?.close()]);
  certs?.close();
});

async function hubAs(user: string, prefix: string, extra: Record<string, string> = {}): Promise<HubOn> {
  const hub = await startHubOn({
    channel: 'webhook',
    mapping: { '#ops': { webhook: [webhook.url('/ops')] } },
    config: { redis: { checkInterval: '1s' } },
    env: { REDIS_URL: `rediss://${user}:${PASSWORD}@127.0.0.1:${redis.port}`, REDIS_CA_FILE: certs.caFile, HUB_PREFIX: prefix, ...extra },
  });
  hubs.push(hub);
  return hub;
}

/** What the command line meets: a fail-fast connection and the sentence it is refused with. */
async function refusal(url: string, caFile?: string): Promise<string> {
  const conn = connectRedis({ url, ...(caFile ? { caFile } : {}) }, { name: 'test-refusal', failFast: true });
  try {
    await whenReady(conn);
    return 'connected';
  } catch (err) {
    assert.ok(err instanceof HubError, `a HubError, not ${String(err)}`);
    return err.message;
  } finally {
    conn.disconnect();
  }
}

describe('Redis over TLS with an ACL user', () => {
  test("the hub routes and delivers as the README's ACL user, over rediss:// with a private CA", async () => {
    const prefix = testPrefix('tls');
    const [setuser, ...rest] = readmeAclRule(prefix, PASSWORD);
    await admin.call('ACL', setuser!, ...rest);
    const hub = await hubAs('hub', prefix);
    await admin.xadd(`${prefix}:in`, '*', 'to', '#ops', 'body', 'over TLS, as an ACL user');
    await eventually('the webhook delivery', () => webhook.requests.some((r) => r.raw.includes('over TLS, as an ACL user')));
    const ready = await eventually('/readyz 200', async () => ((await httpGet(hub.port, '/readyz')).status === 200 ? true : undefined));
    assert.ok(ready);
    await eventually('the permission check', async () => /hub_redis_settings_ok\{setting="permissions"\} 1/.test((await httpGet(hub.port, '/metrics')).body));
    // The rule grants no CONFIG: the policy cannot be read, which is said once, as a warning, not held against it.
    await eventually('the warning', () => hub.logs.some((l) => l.includes('cannot read maxmemory-policy')));
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(hub.logs.filter((l) => l.includes('cannot read maxmemory-policy')).length, 1, 'said once');
    assert.ok(!hub.logs.some((l) => l.includes(PASSWORD)), 'the password is in no log line');
    // Workers sharing targets wake each other (core/runtime/worker.ts): the rule lets them subscribe and publish on their wake channels.
    const wake = `${prefix}:wake:webhook:some-worker`;
    assert.equal(await admin.call('ACL', 'DRYRUN', 'hub', 'SUBSCRIBE', wake), 'OK');
    assert.equal(await admin.call('ACL', 'DRYRUN', 'hub', 'PUBLISH', wake, 'x'), 'OK');
  });

  test('a user without a command the hub needs: the log, /readyz and the metric name the command', async () => {
    const prefix = testPrefix('noperm');
    const rule = readmeAclRule(prefix, PASSWORD);
    await admin.call('ACL', 'SETUSER', 'limited', ...rule.slice(2), '-xautoclaim');
    const hub = await hubAs('limited', prefix);
    const body = await eventually('/readyz 503', async () => {
      const r = await httpGet(hub.port, '/readyz');
      return r.status === 503 ? r.body : undefined;
    });
    console.log(`  /readyz: ${body.trim()}`);
    assert.match(body, /the Redis user of REDIS_URL may not run a command the hub needs \(NOPERM.*xautoclaim/i);
    assert.match(body, /ACL rule of the README/);
    assert.match((await httpGet(hub.port, '/metrics')).body, /hub_redis_settings_ok\{setting="permissions"\} 0/);
    assert.ok(hub.logs.some((l) => /"level":"error".*may not run a command the hub needs/.test(l)), 'an error line');
  });

  test('a wrong password, an expired certificate, a CA not trusted: one sentence each', async () => {
    await admin.call('ACL', 'SETUSER', 'someone', 'on', `>${PASSWORD}`, '~*', '+@all');
    const wrong = await refusal(`rediss://someone:not-the-password@127.0.0.1:${redis.port}`, certs.caFile);
    console.log(`  wrong password: ${wrong}`);
    assert.match(wrong, /refused the user name and password of REDIS_URL \(WRONGPASS/);
    assert.ok(!wrong.includes('not-the-password'));
    const old = await refusal(`rediss://127.0.0.1:${expired.port}`, certs.caFile);
    console.log(`  expired certificate: ${old}`);
    assert.match(old, /the TLS certificate of the Redis server has expired/);
    const unknown = await refusal(`rediss://127.0.0.1:${redis.port}`);
    console.log(`  unknown CA: ${unknown}`);
    assert.match(unknown, /signed by a CA this process does not trust .*set REDIS_CA_FILE/);
    assert.equal(await refusal(`rediss://someone:${PASSWORD}@127.0.0.1:${redis.port}`, certs.caFile), 'connected');
  });

  test('maxmemory-policy allkeys-lru: the log, /readyz and the metric say so, and say when it is noeviction again', async () => {
    const prefix = testPrefix('policy');
    await admin.call('ACL', 'SETUSER', 'operator', 'on', `>${PASSWORD}`, '~*', '+@all');
    const hub = await hubAs('operator', prefix);
    await eventually('/readyz 200', async () => (await httpGet(hub.port, '/readyz')).status === 200);
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const body = await eventually('/readyz 503', async () => {
        const r = await httpGet(hub.port, '/readyz');
        return r.status === 503 ? r.body : undefined;
      });
      console.log(`  /readyz: ${body.trim()}`);
      assert.match(body, /evicts keys under memory pressure \(maxmemory-policy allkeys-lru on 127\.0\.0\.1:\d+\).*set maxmemory-policy noeviction/);
      assert.match((await httpGet(hub.port, '/metrics')).body, /hub_redis_settings_ok\{setting="maxmemory-policy"\} 0/);
      assert.ok(hub.logs.some((l) => /"level":"error".*maxmemory-policy allkeys-lru/.test(l)));
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
    }
    await eventually('/readyz 200 again', async () => (await httpGet(hub.port, '/readyz')).status === 200);
    assert.match((await httpGet(hub.port, '/metrics')).body, /hub_redis_settings_ok\{setting="maxmemory-policy"\} 1/);
  });
});
