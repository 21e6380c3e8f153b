/**
 * The real command line, as an operator runs it: `hub start` in the
 * background as a child process (the hub and the matrix workers, against the
 * fake homeserver and the real Redis, its mapping in a temp file), and the
 * one-shot commands each in a process of their own against the same Redis.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '../servers/free-port.ts';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { type CliProcess, type MatrixBot, REPO, httpGet, matrixEnv, runCli, spawnCli } from '../support/e2e.ts';
import { eventually } from '../support/hub.ts';
import { hubEnv } from '../support/processes.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';
import { fromPairs } from '../../core/redis/fields.ts';

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
    ((await redis.xrange(`${prefix}:dead`, '-', '+')) as Array<[string, string[]]>).map(([id, flat]) => ({ id, ...fromPairs(flat) }) as Record<string, string>);

  before(async () => {
    hs = await startHomeserver();
    bot = hs.registerUser('bot');
    admins = hs.createRoom(bot.userId, { name: 'admins' });
    later = hs.createRoom(bot.userId, { name: 'later' });
    redis = new Redis(REDIS_URL);
    writeMapping({ '#admins': { matrix: [admins] } });
    env = hubEnv(prefix, mappingFile, matrixEnv(hs, bot));
    ({ hub, port } = await startReady({ ...env, LOG_LEVEL: 'info' }));
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

  test('a message to "admins" (no #) from a producer is dead-lettered, and hub dead list shows why', async () => {
    // hub send refuses it (see below), so it comes as a producer's XADD would.
    const entry = (await redis.xadd(`${prefix}:in`, '*', 'to', 'admins', 'body', 'x'))!;
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

describe('bad input on the command line: a sentence on stderr, exit 1, never a stack trace', { concurrency: 2 }, () => {
  const prefix = testPrefix('e2e-cli-bad');
  const dir = mkdtempSync(join(tmpdir(), 'hub-cli-bad-'));
  const badJson = join(dir, 'bad.json');
  let closedPort: number;
  let redis: Redis;

  before(async () => {
    closedPort = await freePort();
    writeFileSync(badJson, '{"_id": "ccs.notifications", "mapping": {');
    redis = new Redis(REDIS_URL);
  });

  after(async () => {
    redis?.disconnect();
    await dropPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (): Record<string, string> => ({ REDIS_URL, HUB_PREFIX: prefix, MAPPING_FILE: join(dir, 'mapping.json') });
  const huge = 'x'.repeat(64 * 1024 + 1);
  const cases: Array<{ args: () => string[]; env?: () => Record<string, string>; says: RegExp; stdout?: string; label?: string }> = [
    { args: () => ['nosuch'], says: /^hub: unknown command 'nosuch'\n\(hub --help says how to use it\)\n$/ },
    { args: () => ['--bogus'], says: /^hub: unknown option '--bogus'\n/ },
    { args: () => ['send', '--bogus', '#admins', 'x'], says: /^hub: unknown option '--bogus'\n\(hub send --help says how to use it\)\n$/ },
    { args: () => ['send', '#admins'], says: /^hub: missing required argument 'body'\n/ },
    { args: () => ['status', 'a', 'b'], says: /^hub: too many arguments for 'status'\. Expected 1 argument but got 2: a, b\.\n/ },
    { args: () => ['dead', 'show', '1-1'], says: /^hub: unknown command 'show'\n\(hub dead --help says how to use it\)\n$/ },
    { args: () => ['send', 'admins', 'x'], says: /^hub: not sent: `to`: "admins" is not a group name; group names start with # \(for example #admins\)\n$/ },
    { args: () => ['send', '#ops team', 'x'], says: /^hub: not sent: `to`: "#ops team" is not a group name/ },
    { args: () => ['send', '#admins', '   '], says: /^hub: not sent: `body` is empty: give the message text\n$/ },
    { args: () => ['send', '#admins', huge], label: 'hub send #admins <64 KiB + 1 byte>', says: /^hub: not sent: `body` is 65 KiB, over the 64 KiB limit; shorten it or link to the details\n$/ },
    { args: () => ['send', '#admins', 'x', '-f', 'rtf'], says: /^hub: not sent: `format` "rtf" is not one of html, text, markdown\n$/ },
    { args: () => ['send', '#admins', 'x', '--channels', 'sms'], says: /^hub: not sent: `channels`: no channel is named "sms" \(known: console, email, matrix, slack, twitter, webhook\)\n$/ },
    { args: () => ['send', '#admins', 'x', '--id', 'i'.repeat(201)], label: 'hub send #admins x --id <201 characters>', says: /^hub: not sent: `id` must be at most 200 characters/ },
    { args: () => ['dead', 'replay', 'nonexistent-id'], says: /^hub: "nonexistent-id" is not a dead letter id; ids look like 1717171717171-0 \(see hub dead list\)\n$/ },
    { args: () => ['dead', 'purge', '99999999999999999999-1', '1-x'], says: /^hub: "99999999999999999999-1", "1-x" are not dead letter ids/ },
    { args: () => ['dead', 'replay', '1-1'], says: /^hub: no dead letter 1-1; see hub dead list\n$/ },
    { args: () => ['dead', 'replay'], says: /^hub: name the dead letters \(ids from hub dead list\) or pass --all\n$/ },
    { args: () => ['dead', 'purge', '--all', '1-1'], says: /^hub: give dead letter ids or --all, not both\n$/ },
    { args: () => ['dead', 'list', '--limit', 'ten'], says: /^hub: --limit: expected a whole number ≥ 1, got "ten"\n$/ },
    { args: () => ['mapping', 'validate', badJson], says: /^hub: .*bad\.json is not valid JSON: / },
    {
      args: () => ['mapping', 'put', join(REPO, 'mapping.json')],
      env: () => ({ MAPPING_FILE: join(dir, 'no-such-folder', 'mapping.json') }),
      says: /^hub: cannot write file .*no-such-folder\/mapping\.json \(ENOENT\); check that its folder exists and is writable, or set MAPPING_FILE\n$/,
      stdout: 'valid: 2 group(s)\n',
    },
    {
      args: () => ['mapping', 'get'],
      env: () => ({ COUCHDB_URL: `http://admin:couch-pw@127.0.0.1:${closedPort}` }),
      says: /^hub: CouchDB: cannot read http:\/\/admin@127\.0\.0\.1:\d+\/notifications\/ccs\.notifications: /,
    },
    {
      args: () => ['status'],
      env: () => ({ REDIS_URL: `redis://:redis-pw@127.0.0.1:${closedPort}` }),
      says: /^hub: cannot reach Redis at redis:\/\/:\[redacted\]@127\.0\.0\.1:\d+ \(connect ECONNREFUSED 127\.0\.0\.1:\d+\); start Redis or set REDIS_URL\n$/,
    },
    {
      args: () => ['dead', 'replay', '--all'],
      env: () => ({ REDIS_URL: `redis://127.0.0.1:${closedPort}` }),
      says: /^hub: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+ \(connect ECONNREFUSED/,
    },
    { args: () => ['status'], env: () => ({ HUB_CONCURRENCY: 'many' }), says: /^hub: invalid config:\n {2}delivery\.concurrency: .*\(from HUB_CONCURRENCY\)\n$/ },
  ];

  for (const c of cases) {
    const label = c.label ?? `hub ${c.args().join(' ')}`;
    test(`${label}${c.env ? ` (${Object.keys(c.env()).join(', ')})` : ''}`, async () => {
      const r = await runCli(c.args(), { ...env(), ...c.env?.() });
      assert.equal(r.code, 1, `exit code; stderr:\n${r.stderr}`);
      assert.match(r.stderr, c.says);
      assert.doesNotMatch(r.stderr, /^ {4}at /m, 'no stack trace');
      assert.doesNotMatch(r.stderr, /-pw\b/, 'no password');
      assert.equal(r.stdout, c.stdout ?? '');
      if (c.args()[0] === 'send') assert.equal(await redis.exists(`${prefix}:in`), 0, 'nothing was sent');
    });
  }

  test('hub alone prints the usage on stderr, exit 1, and --help says there is no default command', async () => {
    const bare = await runCli([], env());
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /^Usage: hub \[options\] \[command\]\n/);
    const help = await runCli(['--help'], env());
    assert.equal(help.code, 0, help.stderr);
    assert.doesNotMatch(help.stdout, /\(the default\)/);
    assert.match(help.stdout, /There is no default command: `hub start` runs the hub and its channels\./);
    assert.match(help.stdout, /^ {2}start \[options\] +run the hub and the workers of every configured/m);
  });

  test('hub --version (and -V, and the bin of a checkout) print the version of package.json', async () => {
    const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    for (const args of [['--version'], ['-V']]) {
      const r = await runCli(args, env());
      assert.deepEqual([r.code, r.stdout, r.stderr], [0, `${version}\n`, '']);
    }
    const bin = await runCli(['--version'], env(), undefined, join(REPO, 'bin/hub.js'));
    assert.deepEqual([bin.code, bin.stdout, bin.stderr], [0, `${version}\n`, '']);
  });

  test('the bin on a Node that does not strip types says which Node to use, in a sentence', async () => {
    const { stdout, stderr, code } = await runCli(['--version'], { ...env(), NODE_OPTIONS: '--no-experimental-strip-types' }, undefined, join(REPO, 'bin/hub.js'));
    assert.deepEqual([code, stdout], [1, '']);
    assert.equal(stderr, `hub: this Node (${process.version}) does not strip TypeScript's types, which the hub's sources need; run it as \`npm run hub -- <command>\` (the project's own Node 24) or with Node 22.19 or later\n`);
  });
});

describe('the quick start on the shipped defaults: the first message to #admins shows on the console', () => {
  const prefix = testPrefix('e2e-cli-defaults');
  const dir = mkdtempSync(join(tmpdir(), 'hub-cli-defaults-'));
  const mappingFile = join(dir, 'mapping.json');
  let port: number;
  let hub: CliProcess;
  let env: Record<string, string>;

  before(async () => {
    // The shipped mapping, copied: the running hub must not watch the checkout's own file.
    copyFileSync(join(REPO, 'mapping.json'), mappingFile);
    // No channel settings at all, as on a newcomer's machine.
    env = { REDIS_URL, HUB_PREFIX: prefix, MAPPING_FILE: mappingFile, HUB_HTTP_HOST: '127.0.0.1' };
    ({ hub, port } = await startReady(env));
  });

  after(async () => {
    await hub?.kill();
    await dropPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  test('hub send \'#admins\' \'<b>hi</b>\' prints one JSON line on the hub\'s stdout, and hub status says sent', async () => {
    const sent = await runCli(['send', '#admins', '<b>hi</b>'], env);
    assert.equal(sent.code, 0, sent.stderr);
    const id = sent.stdout.trim();
    const line = await eventually('the console line of the message', () =>
      hub
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.plugin === 'console' && l.notification === id),
    );
    assert.deepEqual(
      { target: line.target, to: line.to, text: line.text, msg: line.msg, level: line.level },
      { target: 'operator', to: ['#admins'], text: 'hi', msg: '#admins → operator: hi', level: 'info' },
    );

    const status = await eventually('hub status to say sent', async () => {
      const r = await runCli(['status', id], env);
      return r.code === 0 && /\bsent\b/.test(r.stdout) && r.stdout;
    });
    assert.match(status, /^ {2}sent {5}console operator {2}attempts 1$/m);
    assert.equal(status.split('\n').filter((l) => /^ {2}\S/.test(l)).length, 1, `one target, nothing left waiting:\n${status}`);
  });
});

/** `hub start` in the background, once its /readyz answers 200 on `port`. */
/**
 * `hub start`, once /readyz answers 200. On port 0: the kernel picks a free one
 * as the hub binds (a port probed free first could be taken meanwhile by
 * another test's server), and the start line names it.
 */
async function startReady(env: Record<string, string>): Promise<{ hub: CliProcess; port: number }> {
  const hub = spawnCli(['start'], { ...env, HUB_HTTP_PORT: '0' });
  const port = await eventually(
    'hub start to be ready',
    async () => {
      if (hub.child.exitCode !== null) throw new Error(`hub start exited (${hub.child.exitCode}):\n${hub.stdout()}\n${hub.stderr()}`);
      const started = hub.stdout().split('\n').find((line) => line.includes('"msg":"started"'));
      const bound = started ? Number((JSON.parse(started) as { http?: number }).http) : 0;
      return bound > 0 && (await httpGet(bound, '/readyz').catch(() => undefined))?.status === 200 && bound;
    },
    // A hub start loads every module and plugin and connects to the homeserver: on two loaded cores, the slowest event here.
    120_000,
  );
  return { hub, port };
}
