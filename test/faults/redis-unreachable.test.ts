/**
 * `hub start` against a Redis that does not answer, as an operator meets it:
 * the operations port comes up at once (/healthz 200, /readyz 503 with the
 * reason), one JSON line names the URL (without its password) and the error,
 * and reconnecting goes on with backoff without a line per attempt. When
 * Redis comes, the hub routes without a restart; when Redis is lost mid-run,
 * the output stays JSON lines (no ioredis "Unhandled error event" stacks from
 * any of its connections). A database Redis does not have is an error.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { freePort } from '../servers/free-port.ts';
import { type TestWebhookServer, startWebhookServer } from '../servers/webhook.ts';
import { httpGet } from '../support/e2e.ts';
import { eventually } from '../support/hub.ts';
import { type PrivateRedis, startPrivateRedis } from '../support/private-redis.ts';
import { type HubProcess, REPO_ROOT, killAll, runHub, spawnHub } from '../support/processes.ts';
import { REDIS_URL, testPrefix } from '../support/redis.ts';

const dir = mkdtempSync(join(tmpdir(), 'hub-redis-away-'));
let redis: PrivateRedis | undefined;
let webhook: TestWebhookServer | undefined;
let blackHole: Server | undefined;

afterEach(async () => {
  await killAll();
  await redis?.close();
  await webhook?.close();
  blackHole?.close();
  redis = webhook = blackHole = undefined;
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The environment of a `hub start` with the webhook channel only, routing `#ops` to `webhookUrl`. */
function hubEnv(redisUrl: string, webhookUrl = 'http://127.0.0.1:9/unused'): Record<string, string> {
  const config = join(dir, `hub.config.${randomBytes(3).toString('hex')}.mjs`);
  writeFileSync(config, `export default ${JSON.stringify({ plugins: { dirs: [], modules: [join(REPO_ROOT, 'plugins/webhook/index.ts')] }, ingress: { blockMs: 100 } })};\n`);
  const mapping = join(dir, `mapping.${randomBytes(3).toString('hex')}.json`);
  writeFileSync(mapping, JSON.stringify({ _id: 'ccs.notifications', mapping: { '#ops': { webhook: [webhookUrl] } } }));
  return {
    REDIS_URL: redisUrl,
    HUB_PREFIX: testPrefix('redis-away'),
    HUB_CONFIG: config,
    MAPPING_FILE: mapping,
    HUB_HTTP_PORT: '0',
    HUB_HTTP_HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
  };
}

/** GET a path, or undefined when the port does not answer in time (a loaded machine). */
const tryGet = (port: number, path: string) => httpGet(port, path).catch(() => undefined);

/** The operations port, from the line the hub logs before it waits for anything. */
async function opsPort(hub: HubProcess): Promise<number> {
  return (JSON.parse(await hub.waitFor(/"msg":"serving \/healthz, \/readyz and \/metrics"/)) as { port: number }).port;
}

const redisLines = (hub: HubProcess) => hub.logs.filter((l) => l.component === 'redis');

/** Every line the process wrote is a JSON log line: no stack trace, no ioredis print. */
function assertOnlyJson(hub: HubProcess): void {
  const other = hub.output.filter((line) => !line.startsWith('{'));
  assert.deepEqual(other, [], `lines that are not JSON:\n${other.join('\n')}`);
  assert.ok(!hub.output.some((l) => l.includes('Unhandled error event')), 'an ioredis "Unhandled error event"');
}

async function stopAndReadLastLine(hub: HubProcess): Promise<Record<string, unknown>> {
  hub.child.kill('SIGTERM');
  const exit = await hub.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, hub.output.slice(-10).join('\n'));
  return hub.logs.at(-1)!;
}

describe('faults: Redis unreachable', () => {
  test('Redis away at start, then up, then lost and back: the port answers at once, one line per change of state, routing without a restart', async () => {
    const port = await freePort();
    const password = `pw-${randomBytes(6).toString('hex')}`;
    webhook = await startWebhookServer();
    const env = hubEnv(`redis://:${password}@127.0.0.1:${port}`, webhook.url('/ops'));
    const hub = spawnHub(['start'], { env, name: 'hub start (Redis away)' });
    const http = await opsPort(hub);

    assert.deepEqual(await httpGet(http, '/healthz'), { status: 200, body: 'ok\n', type: 'text/plain; charset=utf-8' });
    const url = new RegExp(`redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/?`);
    const notReady = await eventually('/readyz to say why', async () => {
      const r = await tryGet(http, '/readyz');
      return r?.status === 503 && /ECONNREFUSED/.test(r.body) && r.body;
    });
    assert.match(notReady, new RegExp(`^not ready: Redis at ${url.source} is not reachable \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)`));
    const [first] = redisLines(hub);
    assert.equal(first?.level, 'error');
    assert.match(String(first?.url), url);
    assert.match(String(first?.err), /ECONNREFUSED/);
    assert.match(String(first?.msg), new RegExp(`^Redis at ${url.source} is not reachable \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\); retrying with backoff, and logging again when it answers$`));

    redis = await startPrivateRedis({ port, password, durable: false });
    await hub.waitFor(/"msg":"started"/, 60_000);
    const producer = new Redis(redis.url, { maxRetriesPerRequest: null });
    producer.on('error', () => {});
    try {
      await producer.xadd(`${env.HUB_PREFIX}:in`, '*', 'to', '#ops', 'body', 'after Redis came');
      await eventually('the first message at the webhook', () => webhook!.requests.length === 1, 30_000);
      await eventually('/readyz to say ready', async () => (await tryGet(http, '/readyz'))?.status === 200);

      await redis.kill();
      await hub.waitFor(/"msg":"lost Redis at /, 60_000);
      // At least one reconnect attempt has failed: the one that, unlistened, printed a stack per connection.
      await eventually('a failed reconnect attempt', async () => /ECONNREFUSED/.test((await tryGet(http, '/readyz'))?.body ?? ''), 30_000);
      await redis.start();
      await eventually('Redis to answer again', () => redisLines(hub).length === 4, 30_000);
      await producer.xadd(`${env.HUB_PREFIX}:in`, '*', 'to', '#ops', 'body', 'after Redis came back');
      await eventually('the second message at the webhook', () => webhook!.requests.length === 2, 30_000);
      // Received is not yet settled: the stop below would count it as in flight. (This Redis restarted empty:
      // the first message's events went with it.)
      await eventually('the second delivery settled', async () => {
        const events = await producer.xrange(`${env.HUB_PREFIX}:events`, '-', '+');
        return events.some(([, fields]) => fields[fields.indexOf('type') + 1] === 'sent');
      }, 30_000);
    } finally {
      producer.disconnect();
    }

    const changes = redisLines(hub).map((l) => String(l.msg));
    assert.equal(changes.length, 4, changes.join('\n'));
    assert.match(changes[0]!, / is not reachable /);
    assert.match(changes[1]!, / answers again, after [\d.]+ s$/);
    assert.match(changes[2]!, /^lost Redis at .*; retrying with backoff, and logging again when it answers$/);
    assert.match(changes[3]!, / answers again, after [\d.]+ s$/);
    assert.ok(!hub.output.some((l) => l.includes(password)), 'the password is never printed');
    assert.match(String((await stopAndReadLastLine(hub)).msg), /^stopped: 0 deliveries in flight finished$/);
    assertOnlyJson(hub);
  });

  test('a Redis that accepts the connection and never answers: /readyz says so, and the retries log nothing more', async () => {
    const sockets = new Set<Socket>();
    let connections = 0;
    blackHole = createServer((socket) => {
      connections += 1;
      sockets.add(socket.on('close', () => sockets.delete(socket)).on('error', () => {}));
    });
    const server = blackHole;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const hub = spawnHub(['start'], { env: hubEnv(`redis://127.0.0.1:${port}`), name: 'hub start (Redis silent)' });
    const http = await opsPort(hub);

    assert.equal((await httpGet(http, '/healthz')).status, 200);
    const ready = await eventually('/readyz to say why', async () => {
      const r = await tryGet(http, '/readyz');
      return r?.status === 503 && /did not answer/.test(r.body) && r.body;
    }, 30_000);
    assert.match(ready, new RegExp(`^not ready: Redis at redis://127\\.0\\.0\\.1:${port}/? is not reachable \\(accepted the connection but did not answer within 5 s\\)`));
    await eventually('three connection attempts', () => connections >= 3, 60_000);
    assert.equal(redisLines(hub).length, 1, JSON.stringify(redisLines(hub)));

    for (const socket of sockets) socket.destroy();
    assert.match(String((await stopAndReadLastLine(hub)).msg), /^stopped: /);
    assertOnlyJson(hub);
  });

  test('a REDIS_URL naming a database Redis does not have is a sentence and exit code 78, not database 0', async () => {
    const url = new URL(REDIS_URL);
    url.pathname = '/99';
    const env = hubEnv(url.href);
    const start = spawnHub(['start'], { env, name: 'hub start (database 99)' });
    const exit = await start.exited;
    const stderr = start.output.filter((l) => !l.startsWith('{')).join('\n');
    assert.equal(exit.code, 78, start.output.join('\n'));
    assert.match(stderr, new RegExp(`^hub: REDIS_URL names database 99, which the Redis at redis://${url.host}/99 does not have \\(ERR DB index is out of range\\)`));
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');

    // A one-shot command says the same, with the exit code of every command line error.
    const status = await runHub(['status'], { env });
    assert.equal(status.code, 1, status.stdout);
    assert.match(status.stdout, /^hub: REDIS_URL names database 99/m);
  });
});
