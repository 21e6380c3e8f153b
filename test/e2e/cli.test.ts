/**
 * The real command line, as an operator runs it: `hub start` in the
 * background as a child process (the hub and the matrix workers, against the
 * fake homeserver and the real Redis, its mapping in a temp file), and the
 * one-shot commands each in a process of their own against the same Redis.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { type CliProcess, type MatrixBot, httpGet, matrixEnv, runCli, spawnCli } from '../support/e2e.ts';
import { eventually } from '../support/hub.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

describe('the hub command line', () => {
  const prefix = testPrefix('e2e-cli');
  const dir = mkdtempSync(join(tmpdir(), 'hub-cli-'));
  const mappingFile = join(dir, 'mapping.json');
  let hs: Homeserver;
  let bot: MatrixBot;
  let admins: string;
  let later: string;
  let redis: Redis;
  let port: number;
  let hub: CliProcess;
  let env: Record<string, string>;

  const writeMapping = (mapping: unknown) => writeFileSync(mappingFile, JSON.stringify({ _id: 'ccs.notifications', mapping }));
  const cli = (...args: string[]) => runCli(args, env);
  const deadLetters = async () =>
    ((await redis.xrange(`${prefix}:dead`, '-', '+')) as Array<[string, string[]]>).map(([id, flat]) => ({ id, ...Object.fromEntries(pairsOf(flat)) }) as Record<string, string>);

  before(async () => {
    hs = await startHomeserver();
    bot = hs.registerUser('bot');
    admins = hs.createRoom(bot.userId, { name: 'admins' });
    later = hs.createRoom(bot.userId, { name: 'later' });
    redis = new Redis(REDIS_URL);
    writeMapping({ '#admins': { matrix: [admins] } });
    env = {
      REDIS_URL,
      HUB_PREFIX: prefix,
      MAPPING_FILE: mappingFile,
      HUB_HTTP_PORT: '0',
      HUB_HTTP_HOST: '127.0.0.1',
      ...matrixEnv(hs, bot),
    };
    // Port 0: the kernel picks a free one as the hub binds (a port probed free first could be taken meanwhile); the start line names it.
    hub = spawnCli(['start'], { ...env, LOG_LEVEL: 'info' });
    port = await eventually(
      'hub start to be ready',
      async () => {
        if (hub.child.exitCode !== null) throw new Error(`hub start exited (${hub.child.exitCode}):\n${hub.stdout()}\n${hub.stderr()}`);
        const started = hub.stdout().split('\n').find((line) => line.includes('"msg":"started"'));
        const bound = started ? Number((JSON.parse(started) as { http?: number }).http) : 0;
        return bound > 0 && (await httpGet(bound, '/readyz').catch(() => undefined))?.status === 200 && bound;
      },
      120_000,
    );
  });

  after(async () => {
    await hub?.kill();
    redis?.disconnect();
    await dropPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
    await hs?.close(); // throws on any Matrix spec violation
  });

  test('hub send prints the message id, and the message arrives at the homeserver', async () => {
    const sent = await cli('send', '#admins', '<b>hi</b>');
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^\d+-\d+\n$/);
    const event = await eventually('the event in the room', () => hs.messages(admins).find((e) => String(e.content.formatted_body).includes('<b>hi</b>')));
    assert.equal(event.content.msgtype, 'm.text');
    assert.equal(event.content.body, 'hi');
    assert.equal(event.sender, bot.userId);

    // hub status <id>: every target, its state and the peer's id.
    const id = sent.stdout.trim();
    const text = await eventually('hub status to show it sent', async () => {
      const status = await cli('status', id);
      return status.code === 0 && /\bsent\b/.test(status.stdout) && status.stdout;
    });
    assert.match(text, new RegExp(`^message ${id} to #admins`));
    assert.ok(text.includes(`sent     matrix ${admins}  attempts 1  peer id ${event.event_id}`), text);

    const json = await cli('status', id, '--json');
    assert.equal(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout) as { entry: string; to: string[]; deliveries: Array<Record<string, unknown>> };
    assert.equal(status.entry, id);
    assert.deepEqual(status.to, ['#admins']);
    assert.equal(status.deliveries.length, 1);
    assert.equal(status.deliveries[0]!.state, 'sent');
    assert.equal(status.deliveries[0]!.target, admins);
    assert.equal(status.deliveries[0]!.peerId, event.event_id);
  });

  test('hub status (no id) shows the backlog, the live workers and the mapping, as text and as JSON', async () => {
    const json = await cli('status', '--json');
    assert.equal(json.code, 0, json.stderr);
    const o = JSON.parse(json.stdout) as {
      hubs: number;
      dead: number;
      ingress: { stream: string; lag: number };
      channels: Array<{ channel: string; workers: number; stream: string }>;
      mapping: { revision: string | null };
    };
    assert.equal(o.hubs, 1);
    assert.equal(o.ingress.stream, `${prefix}:in`);
    assert.match(String(o.mapping.revision), /^file-/);
    const matrix = o.channels.find((c) => c.channel === 'matrix');
    assert.equal(matrix?.workers, 1);
    assert.equal(matrix?.stream, `${prefix}:deliver:matrix`);
    assert.equal(o.channels.find((c) => c.channel === 'email')?.workers, 0, 'email is not configured: no worker');

    const text = await cli('status');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^mapping {4}file-/m);
    assert.match(text.stdout, /^hubs {7}1 alive/m);
    assert.match(text.stdout, /^matrix {5}0 waiting, 0 in progress, 1 worker\(s\)/m);
  });

  test('hub status of an unknown id exits non-zero and says so', async () => {
    const r = await cli('status', '1-1');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^hub: no message 1-1 is known/);
  });

  test('a message to "admins" (no #) is dead-lettered, and hub dead list shows why', async () => {
    const sent = await cli('send', 'admins', 'x');
    assert.equal(sent.code, 0, sent.stderr);
    const entry = sent.stdout.trim();
    await eventually('the dead letter', async () => (await deadLetters()).find((d) => d.entry === entry));
    const list = await cli('dead', 'list');
    assert.equal(list.code, 0, list.stderr);
    const line = list.stdout.split('\n').find((l) => l.includes('"admins" is not a group name'));
    assert.ok(line, list.stdout);
    assert.match(line, /^\d+-\d+ {2}ingress {2}`to`: "admins" is not a group name; group names start with #/);

    const json = JSON.parse((await cli('dead', 'list', '--json')).stdout) as Array<Record<string, string>>;
    const letter = json.find((d) => d.entry === entry);
    assert.equal(letter?.stage, 'ingress');
    assert.equal(letter?.to, 'admins');
    assert.equal(letter?.body, 'x');
  });

  test('hub dead replay delivers a dead letter once the mapping is fixed', async () => {
    const sent = await cli('send', '#later', 'deferred <i>alert</i>');
    const entry = sent.stdout.trim();
    const letter = await eventually('the dead letter', async () => (await deadLetters()).find((d) => d.entry === entry));
    assert.match(letter.reason!, /^no group #later in the mapping/);
    assert.match((await cli('dead', 'list')).stdout, /no group #later in the mapping/);

    const before = await redis.hget(`${prefix}:mapping`, 'revision');
    writeMapping({ '#admins': { matrix: [admins] }, '#later': { matrix: [later] } });
    await eventually('the new mapping in force', async () => {
      const revision = await redis.hget(`${prefix}:mapping`, 'revision');
      return revision !== before && revision;
    });

    const replay = await cli('dead', 'replay', letter.id!);
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, new RegExp(`^${letter.id} → \\d+-\\d+\\n$`));
    const event = await eventually('the replayed message in the room', () => hs.messages(later)[0]);
    assert.equal(event.content.body, 'deferred alert');
    assert.equal(event.content.formatted_body, 'deferred <i>alert</i>');
    assert.equal((await deadLetters()).find((d) => d.id === letter.id), undefined, 'the dead letter is gone');
    assert.doesNotMatch((await cli('dead', 'list')).stdout, /#later/);
  });

  test('hub mapping validate refuses a bad document, naming the path that is wrong', async () => {
    const bad = join(dir, 'bad-mapping.json');
    writeFileSync(bad, JSON.stringify({ _id: 'ccs.notifications', mapping: { '#admins': { matrix: [admins, 'ops-room'] } } }));
    const r = await cli('mapping', 'validate', bad);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /mapping\["#admins"\]\.matrix\[1\]: not a room id, alias or user id/);
    assert.equal(r.stdout, '');

    const good = join(dir, 'good-mapping.json');
    writeFileSync(good, JSON.stringify({ _id: 'ccs.notifications', mapping: { '#admins': { matrix: [admins] } } }));
    const ok = await cli('mapping', 'validate', good);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'valid: 1 group(s)\n');

    const missing = await cli('mapping', 'validate', join(dir, 'nope.json'));
    assert.notEqual(missing.code, 0);
    assert.ok(missing.stderr.includes(join(dir, 'nope.json')), missing.stderr);
  });

  test('hub plugins lists every channel and says why the unconfigured ones are not started', async () => {
    const r = await cli('plugins');
    assert.equal(r.code, 0, r.stderr);
    const line = (name: string) => r.stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? assert.fail(`no line for ${name} in:\n${r.stdout}`);
    assert.match(line('matrix'), /^matrix +ready /);
    assert.match(line('webhook'), /^webhook +ready /);
    assert.match(line('email'), /^email +not started +not configured: set SMTP_URL, EMAIL_FROM$/);
    assert.match(line('slack'), /^slack +not started +not configured: set SLACK_TOKEN$/);
    assert.match(line('twitter'), /^twitter +not started +not configured: set TWITTER_APP_KEY, TWITTER_APP_SECRET, TWITTER_ACCESS_TOKEN, TWITTER_ACCESS_SECRET$/);
  });

  test('hub worker for a channel that does not exist exits non-zero with a sentence', async () => {
    const r = await cli('worker', 'nosuch');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^hub: no channel plugin is named "nosuch"; installed: [a-z, ]*\bmatrix\b/);
  });

  test('the HTTP port serves /healthz, /readyz and /metrics, and nothing else', async () => {
    const health = await httpGet(port, '/healthz');
    assert.deepEqual([health.status, health.body], [200, 'ok\n']);
    const ready = await httpGet(port, '/readyz');
    assert.deepEqual([ready.status, ready.body], [200, 'ready\n']);
    const metrics = await httpGet(port, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.type), /^text\/plain/);
    assert.match(metrics.body, /^hub_messages_in_total\{outcome="routed"\} [1-9]/m);
    assert.match(metrics.body, /^hub_deliveries_total\{channel="matrix",outcome="sent"\} [1-9]/m);
    assert.match(metrics.body, /^hub_workers_alive\{channel="matrix"\} 1$/m);
    assert.match(metrics.body, /^hub_workers_alive\{channel="email"\} 0$/m);
    assert.match(metrics.body, new RegExp(`^hub_stream_length\\{stream="${prefix}:dead"\\} \\d+$`, 'm'));
    assert.match(metrics.body, /^hub_mapping_info\{revision="file-[0-9a-f]+",groups="2"\} 1$/m);
    for (const path of ['/', '/metrics/extra', '/status', '/healthz/../../etc/passwd']) {
      const r = await httpGet(port, path);
      assert.equal(r.status, 404, path);
    }
  });

  test('SIGTERM stops hub start cleanly: exit 0, and it no longer counts as a live hub', async () => {
    hub.child.kill('SIGTERM');
    const exit = await Promise.race([hub.exited, sleep(60_000, 'timeout', { ref: false })]);
    assert.deepEqual(exit, { code: 0, signal: null }, `hub start output:\n${hub.stderr()}`);
    assert.match(hub.stdout(), /"msg":"stopping: deliveries in flight finish/);
    const o = JSON.parse((await cli('status', '--json')).stdout) as { hubs: number; channels: Array<{ channel: string; workers: number }> };
    assert.equal(o.hubs, 0);
    assert.equal(o.channels.find((c) => c.channel === 'matrix')?.workers, 0);
    await assert.rejects(httpGet(port, '/healthz'), 'the port is closed');
  });
});

function pairsOf(flat: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}
