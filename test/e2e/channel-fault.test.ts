/**
 * One channel's fault stays in that channel: `hub start` with a plugin whose
 * createSender throws (test/fixtures/plugins/faulty/broken), one whose
 * settings do not validate (…/picky), and the matrix channel with a
 * malformed MATRIX_CRYPTO_KEY, beside the webhook channel. The faulty ones
 * are reported down (log, /readyz, /metrics, `hub plugins`, `hub status`),
 * their deliveries wait in their streams, and the webhook delivers. Errors
 * of the hub's own configuration still stop the start, with a sentence and
 * exit code 78.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { freePort } from '../servers/free-port.ts';
import { type TestWebhookServer, startWebhookServer } from '../servers/webhook.ts';
import { httpGet } from '../support/e2e.ts';
import { eventually } from '../support/hub.ts';
import { type HubProcess, REPO_ROOT, killAll, runHub, spawnHub } from '../support/processes.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

const BROKEN_KEY = 'broken-key-that-is-secret';

describe('a faulty channel stays down alone', () => {
  const prefix = testPrefix('channel-fault');
  const dir = mkdtempSync(join(tmpdir(), 'hub-channel-fault-'));
  const redis = new Redis(REDIS_URL);
  let webhook: TestWebhookServer;
  let hub: HubProcess;
  let port: number;
  let env: Record<string, string>;

  before(async () => {
    webhook = await startWebhookServer();
    port = await freePort();
    const config = join(dir, 'hub.config.mjs');
    const plugins = { dirs: [join(REPO_ROOT, 'test/fixtures/plugins/faulty')], modules: ['webhook', 'matrix'].map((p) => join(REPO_ROOT, 'plugins', p, 'index.ts')) };
    writeFileSync(config, `export default ${JSON.stringify({ plugins, ingress: { blockMs: 100 } })};\n`);
    const mapping = { '#ops': { webhook: [webhook.url('/ops')], broken: ['broken:one'], picky: ['picky:one'], matrix: ['!room:example.org'] } };
    writeFileSync(join(dir, 'mapping.json'), JSON.stringify({ _id: 'ccs.notifications', mapping }));
    env = {
      REDIS_URL,
      HUB_PREFIX: prefix,
      HUB_CONFIG: config,
      MAPPING_FILE: join(dir, 'mapping.json'),
      HUB_HTTP_PORT: String(port),
      HUB_HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      BROKEN_KEY,
      PICKY_LEVEL: 'medium',
      // Never contacted: the channel stops at its key.
      MATRIX_HOMESERVER: 'http://127.0.0.1:9',
      MATRIX_USER_ID: '@bot:example.org',
      MATRIX_ACCESS_TOKEN: 'matrix-token-not-used',
      MATRIX_DEVICE_ID: 'HUBDEVICE',
      MATRIX_CRYPTO_STORE: join(dir, 'crypto'),
      MATRIX_CRYPTO_KEY: 'not-a-key',
    };
    hub = spawnHub(['start'], { env, name: 'hub start (faulty channels)' });
    await hub.waitFor(/"msg":"started"/, 60_000);
  });

  after(async () => {
    await killAll();
    await webhook?.close();
    await dropPrefix(prefix, redis);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  const downLine = (channel: string) => hub.logs.find((l) => l.channel === channel && l.level === 'error');

  test('each faulty channel gets one log line with its reason as a sentence, the secret redacted; the process runs on', () => {
    assert.deepEqual(hub.logs.find((l) => l.msg === 'started')?.workers, ['webhook']);
    assert.deepEqual(hub.logs.find((l) => l.msg === 'started')?.down, ['broken', 'picky', 'matrix']);
    const broken = downLine('broken');
    assert.equal(broken?.reason, 'BROKEN_KEY [redacted] is not a key: expected 64 hex characters');
    assert.equal(broken?.msg, `channel broken is down: BROKEN_KEY [redacted] is not a key: expected 64 hex characters; its deliveries wait in ${prefix}:deliver:broken until it is fixed and restarted, and the other channels run`);
    assert.match(String(downLine('picky')?.reason), /^invalid settings of channel picky: channels\.picky\.level: .*"low"\|"high" \(from PICKY_LEVEL\)$/);
    assert.match(String(downLine('matrix')?.reason), /MATRIX_CRYPTO_KEY/);
    assert.ok(hub.running);
    assert.ok(!hub.output.some((l) => l.includes(BROKEN_KEY)), 'the secret is never printed');
    assert.deepEqual(hub.output.filter((l) => !l.startsWith('{')), [], 'no stack trace, only JSON lines');
  });

  test('the webhook delivers while the faulty channels\' deliveries wait in their streams', async () => {
    const entry = (await redis.xadd(`${prefix}:in`, '*', 'to', '#ops', 'body', 'to every channel')) as string;
    await eventually('the webhook delivery', () => webhook.requests.find((r) => (r.json as { messageId?: string })?.messageId === entry), 30_000);
    for (const channel of ['broken', 'picky', 'matrix']) {
      assert.equal(await redis.xlen(`${prefix}:deliver:${channel}`), 1, `${channel}: one delivery waiting`);
    }
  });

  test('/readyz names each channel that is down, and /metrics has hub_channel_up', async () => {
    const ready = await httpGet(port, '/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.body, /^not ready: /);
    assert.ok(ready.body.includes('channel broken is down: BROKEN_KEY [redacted] is not a key: expected 64 hex characters'), ready.body);
    assert.ok(ready.body.includes('channel picky is down: invalid settings of channel picky: '), ready.body);
    assert.ok(ready.body.includes('channel matrix is down: '), ready.body);
    const metrics = (await httpGet(port, '/metrics')).body;
    assert.match(metrics, /^hub_channel_up\{channel="webhook"\} 1$/m);
    for (const channel of ['broken', 'picky', 'matrix']) assert.match(metrics, new RegExp(`^hub_channel_up\\{channel="${channel}"\\} 0$`, 'm'));
  });

  test('hub plugins and hub status, run elsewhere, show the channels that are down and why', async () => {
    const plugins = await runHub(['plugins'], { env: { ...env, LOG_LEVEL: 'warn' } });
    assert.equal(plugins.code, 0, plugins.stdout);
    const line = (name: string) => plugins.stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? assert.fail(`no line for ${name}:\n${plugins.stdout}`);
    assert.match(line('broken'), /^broken +down +BROKEN_KEY \[redacted\] is not a key: expected 64 hex characters$/);
    assert.match(line('picky'), /^picky +down +invalid settings of channel picky: channels\.picky\.level: /);
    assert.match(line('matrix'), /^matrix +down +.*MATRIX_CRYPTO_KEY/);
    assert.match(line('webhook'), /^webhook +ready /);

    const status = await runHub(['status'], { env: { ...env, LOG_LEVEL: 'warn' } });
    assert.equal(status.code, 0, status.stdout);
    assert.match(status.stdout, /^broken {5}1 waiting, 0 in progress, 0 worker\(s\) {2}← down: BROKEN_KEY \[redacted\] is not a key: expected 64 hex characters$/m);
    assert.match(status.stdout, /^webhook {4}0 waiting, 0 in progress, 1 worker\(s\)$/m);
    const json = JSON.parse((await runHub(['status', '--json'], { env: { ...env, LOG_LEVEL: 'warn' } })).stdout) as { channels: Array<{ channel: string; down?: string }> };
    assert.match(String(json.channels.find((c) => c.channel === 'picky')?.down), /^invalid settings of channel picky/);
    assert.equal(json.channels.find((c) => c.channel === 'webhook')?.down, undefined);
    assert.ok(![plugins.stdout, status.stdout].some((text) => text.includes(BROKEN_KEY)), 'the secret is never printed');
  });

  test('once the process stops, no channel is reported down any more', async () => {
    await hub.stop(20_000);
    const status = JSON.parse((await runHub(['status', '--json'], { env: { ...env, LOG_LEVEL: 'warn' } })).stdout) as { channels: Array<{ down?: string }> };
    assert.deepEqual(status.channels.filter((c) => c.down), []);
  });

  test('an error of the hub\'s own configuration still stops the start: a sentence and exit code 78, never a stack trace', async () => {
    const start = spawnHub(['start'], { env: { ...env, HUB_HTTP_PORT: 'ninety' }, name: 'hub start (bad HUB_HTTP_PORT)' });
    assert.equal((await start.exited).code, 78);
    const text = start.output.join('\n');
    assert.match(text, /^hub: invalid config:\n {2}http\.port: .*\(from HUB_HTTP_PORT\)$/m);
    assert.doesNotMatch(text, /\n\s+at |unexpected error/);
  });
});
