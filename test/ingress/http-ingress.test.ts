/**
 * The HTTP ingress (CONTRACT §8) over real HTTP, with a whole hub against the
 * real Redis and the fake homeserver: what producers hear (status, JSON
 * error naming the field), and what people see in the rooms.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { App } from '../../core/app.ts';
import { resolveConfig } from '../../core/config/load-config.ts';
import { messageStatus } from '../../core/status/message.ts';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { type MatrixBot, matrixEnv, runCli, settled } from '../support/e2e.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { startPrivateRedis } from '../support/private-redis.ts';
import { REDIS_URL, testPrefix } from '../support/redis.ts';
import { ALERTS_TOKEN, notification, OPS_TOKEN, post, rawExchange, SLOW_TOKEN, TOKENS } from './support.ts';

describe('HTTP ingress: POST → 202 → notify:in → the rooms', () => {
  let hs: Homeserver;
  let bot: MatrixBot;
  let hub: TestHub;
  let port: number;
  const rooms: Record<string, string> = {};

  before(async () => {
    hs = await startHomeserver();
    bot = hs.registerUser('bot');
    for (const name of ['ops', 'alerts', 'dev', 'grafana', 'storm']) rooms[name] = hs.createRoom(bot.userId, { name });
    hub = await startTestHub({
      name: 'http-ingress',
      mapping: Object.fromEntries(Object.entries(rooms).map(([name, room]) => [`#${name}`, { matrix: [room], ...(name === 'storm' ? { throttle: { window: '1h' } } : {}) }])),
      env: { ...matrixEnv(hs, bot), HUB_INGRESS_TOKENS: JSON.stringify(TOKENS) },
      config: { logLevel: 'debug', httpIngress: { port: 0, host: '127.0.0.1', headersTimeout: 1500, requestTimeout: 1500, maxRequestBytes: 256 * 1024 } },
    });
    port = hub.app.cradle.httpIngress.port!;
  });
  after(async () => {
    await hub?.stop();
    await hs?.close();
  });

  const waitForMessages = (room: string, count: number) => eventually(`${count} message(s) in ${room}`, () => hs.messages(room).length >= count && hs.messages(room));

  test('curl -d to a group: the text arrives with its Title, and hub status names the producer', async () => {
    const answer = await post(port, '/v1/groups/ops', { token: OPS_TOKEN, body: 'Backup done', type: 'application/x-www-form-urlencoded', headers: { title: Buffer.from('Nightly backup ✓').toString('latin1') } });
    assert.equal(answer.status, 202);
    const id = answer.json.id as string;
    assert.match(id, /^\d+-\d+$/, 'the answer is the entry id XADD returned');
    await settled(hub, id, 1);
    const [event] = await waitForMessages(rooms.ops!, 1);
    assert.equal(event!.content.body, 'Nightly backup ✓\n\nBackup done', 'a UTF-8 Title is read as UTF-8');
    const status = await runCli(['status', id], { REDIS_URL, HUB_PREFIX: hub.prefix, MAPPING_FILE: hub.mappingFile });
    assert.match(status.stdout, /^received \S+ from producer ops-scripts, mapping /m, status.stdout + status.stderr);

    const markdown = await post(port, '/v1/groups/%23dev', { token: OPS_TOKEN, body: 'Deploy **done**', type: 'text/markdown; charset=utf-8' });
    assert.equal(markdown.status, 202, 'the group may be given with its # (percent-encoded)');
    const [deployed] = await waitForMessages(rooms.dev!, 1);
    assert.match(String(deployed!.content.formatted_body), /<strong>done<\/strong>/, 'text/markdown picks the markdown format');
  });

  test('POST /v1/messages: one entry; the same Idempotency-Key again is accepted and delivered once', async () => {
    const message = JSON.stringify({ to: ['#dev'], subject: 'Release 4.2', body: '<p>shipped</p>', key: 'release' });
    const first = await post(port, '/v1/messages', { token: OPS_TOKEN, body: message, type: 'application/json', headers: { 'idempotency-key': 'release-4.2' } });
    const again = await post(port, '/v1/messages', { token: OPS_TOKEN, body: message, type: 'application/json', headers: { 'idempotency-key': 'release-4.2' } });
    assert.equal(first.status, 202);
    assert.equal(again.status, 202, 'a retry is answered like the first');
    await settled(hub, first.json.id as string, 1);
    await eventually('the retry recorded as a duplicate', async () => (await hub.read('events')).some((e) => e.type === 'duplicate' && e.entry === again.json.id));
    assert.equal(hs.messages(rooms.dev!).filter((e) => String(e.content.body).includes('Release 4.2')).length, 1, 'delivered once');
    const status = await messageStatus(hub.redis, hub.app.cradle.keys, 'release-4.2');
    assert.equal(status?.producer, 'ops-scripts', 'hub status by the idempotency key names the producer');
  });

  test('an Alertmanager notification becomes one readable message; firing then resolved; a peer\'s copy is delivered once', async () => {
    const alerts = [{ name: 'HighLatency', instance: 'api-1:9100' }, { name: 'HighLatency', instance: 'api-2:9100', summary: 'latency high on api-2' }];
    const firing = JSON.stringify(notification({ status: 'firing', alerts, truncatedAlerts: 3 }));
    const answers = await Promise.all([1, 2].map(() => post(port, '/v1/alertmanager/alerts', { token: ALERTS_TOKEN, body: firing, type: 'application/json' })));
    assert.deepEqual(answers.map((a) => a.status), [202, 202]);
    const [message] = await waitForMessages(rooms.alerts!, 1);
    const text = String(message!.content.body);
    const html = String(message!.content.formatted_body);
    for (const expected of ['[FIRING:2] HighLatency', 'job=api', 'severity=page', 'instance=api-1:9100', 'instance=api-2:9100', 'latency high on api-2', 'p99 over 2 s for 5 minutes', '3 more alert(s)']) {
      assert.ok(text.includes(expected), `the message says ${expected}:\n${text}`);
    }
    assert.equal(text.split('job=api').length - 1, 1, 'common labels are shown once');
    assert.match(html, /href="http:\/\/prometheus\.example\.org:9090\/graph\?g0\.expr=/, 'links to the generatorURL');
    assert.match(html, /href="http:\/\/alertmanager\.example\.org:9093\/#\/silences\/new\?filter=%7B/, 'links to a pre-filled silence');
    assert.match(html, /href="http:\/\/alertmanager\.example\.org:9093"/, 'links to Alertmanager');

    const resolved = JSON.stringify(notification({ status: 'resolved', alerts }));
    assert.equal((await post(port, '/v1/alertmanager/alerts', { token: ALERTS_TOKEN, body: resolved, type: 'application/json' })).status, 202);
    const messages = await waitForMessages(rooms.alerts!, 2);
    assert.match(String(messages[1]!.content.body), /^\[RESOLVED\] HighLatency/);
    await eventually('the copy recorded as a duplicate', async () => (await hub.read('events')).some((e) => e.type === 'duplicate'));
    const status = await messageStatus(hub.redis, hub.app.cradle.keys, answers[0]!.json.id as string);
    assert.equal(status?.producer, 'alertmanager');
    assert.equal(hs.messages(rooms.alerts!).length, 2, 'the firing and the resolved notification, each once');
  });

  test('Alertmanager\'s repeats to a throttled group fold into a digest by their group key, however long it is', async () => {
    // A route grouping by many labels makes a group key longer than an entry's `key` may be.
    const groupKey = `{}/{severity="page"}:{${Array.from({ length: 12 }, (_, i) => `label_${i}="value-of-some-length-${i}"`).join(', ')}}`;
    assert.ok(groupKey.length > 200);
    const posted: string[] = [];
    for (const instance of ['db-1:9100', 'db-2:9100', 'db-3:9100']) {
      const body = JSON.stringify(notification({ status: 'firing', groupKey, alerts: [{ name: 'DiskFull', instance }] }));
      const answer = await post(port, '/v1/alertmanager/storm', { token: OPS_TOKEN, body, type: 'application/json' });
      assert.equal(answer.status, 202, JSON.stringify(answer.json));
      posted.push(answer.json.id as string);
    }
    const [first] = await waitForMessages(rooms.storm!, 1);
    assert.match(String(first!.content.body), /db-1:9100/);
    const held = await eventually('the two repeats held in one window', async () => {
      const statuses = await Promise.all(posted.slice(1).map((id) => messageStatus(hub.redis, hub.app.cradle.keys, id)));
      const digests = statuses.map((s) => s?.heldIn?.[0]);
      return digests.every((d) => d?.state === 'open') && digests;
    });
    assert.equal(held[0]!.id, held[1]!.id, 'one digest carries both');
    assert.equal(held[0]!.held, 2);
    assert.match(held[0]!.key, /^alertmanager:[0-9a-f]{64}$/);
    assert.equal(hs.messages(rooms.storm!).length, 1, 'the repeats are not sent on their own');
  });

  test('Grafana\'s webhook contact point: its title and message are what people read', async () => {
    const grafana = { ...notification({ status: 'firing', groupKey: '{}/{grafana}:{alertname="DiskFull"}', alerts: [{ name: 'DiskFull', instance: 'db-1' }] }), title: '[FIRING:1] DiskFull (db-1)', message: '**Firing**\nValue: 97 %\nLabels:\n - alertname = DiskFull', orgId: 1, state: 'alerting' };
    assert.equal((await post(port, '/v1/alertmanager/grafana', { token: OPS_TOKEN, body: JSON.stringify(grafana), type: 'application/json' })).status, 202);
    const [message] = await waitForMessages(rooms.grafana!, 1);
    assert.match(String(message!.content.body), /^\[FIRING:1\] DiskFull \(db-1\)\n\n\*\*Firing\*\*\nValue: 97 %/);
  });

  test('tokens: 401 without or with a wrong one, 403 for a group outside its list, 429 with Retry-After over its rate', async () => {
    const body = 'hello';
    const none = await post(port, '/v1/groups/ops', { body });
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer');
    assert.match(String(none.json.error), /Authorization: Bearer/);
    assert.equal((await post(port, '/v1/groups/ops', { body, token: `${OPS_TOKEN}x` })).status, 401);
    assert.equal((await post(port, '/v1/groups/ops', { body, headers: { authorization: `Basic ${OPS_TOKEN}` } })).status, 401);
    const forbidden = await post(port, '/v1/groups/dev', { body, token: ALERTS_TOKEN });
    assert.deepEqual([forbidden.status, forbidden.json.field], [403, 'to']);
    assert.match(String(forbidden.json.error), /producer alertmanager may not address #dev/);
    const viaMessage = await post(port, '/v1/messages', { token: ALERTS_TOKEN, type: 'application/json', body: JSON.stringify({ to: '#ops,#dev', body }) });
    assert.equal(viaMessage.status, 403, 'every group of `to` must be allowed');

    const answers = [];
    for (let i = 0; i < 3; i += 1) answers.push(await post(port, '/v1/groups/dev', { body: `chatty ${i}`, token: SLOW_TOKEN }));
    assert.deepEqual(answers.map((a) => a.status), [202, 202, 429], 'a burst of 2, then over the rate of 2/min');
    assert.ok(Number(answers[2]!.headers['retry-after']) >= 1, 'Retry-After says when to come back');
    assert.match(String(answers[2]!.json.error), /producer chatty is over its rate/);
  });

  test('what would be dead-lettered is refused at once, naming the field; nothing reaches notify:in', async () => {
    const before = (await hub.read('dead')).length;
    const cases: Array<[string, string, number, string | undefined, RegExp]> = [
      ['/v1/messages', '{"to": "#ops", "body": ', 400, undefined, /not valid JSON/],
      ['/v1/messages', '[1, 2]', 400, undefined, /JSON array, not an object/],
      ['/v1/messages', '{"body": "no group"}', 422, 'to', /`to` is missing/],
      ['/v1/messages', '{"to": "#ops"}', 422, 'body', /`body` is missing/],
      ['/v1/messages', '{"to": "ops", "body": "x"}', 422, 'to', /not a group name/],
      ['/v1/messages', '{"to": "#nobody", "body": "x"}', 422, 'to', /no group #nobody in the mapping/],
      ['/v1/messages', '{"to": "#ops", "body": "x", "channels": "pager"}', 422, 'channels', /no channel is named "pager"/],
      ['/v1/messages', '{"to": "#ops", "body": "x", "format": "rtf"}', 422, 'format', /not one of html, text, markdown/],
      ['/v1/messages', '{"to": "#ops", "body": "x", "subjet": "typo"}', 422, 'subjet', /not a field of a message/],
      ['/v1/messages', '{"to": "#ops", "body": "x", "producer": "someone-else"}', 422, 'producer', /set from your token/],
      ['/v1/messages', `{"to": "#ops", "body": "${'x'.repeat(70 * 1024)}"}`, 413, 'body', /over the 64 KiB limit/],
      ['/v1/alertmanager/ops', '{"version": "4", "status": "firing"}', 422, 'groupKey', /Alertmanager's webhook payload/],
      ['/v1/alertmanager/ops', JSON.stringify({ ...notification({ status: 'firing', alerts: [{ name: 'A', instance: 'i' }] }), alerts: [] }), 422, 'alerts', /at least one alert/],
      ['/v1/alertmanager/nobody', JSON.stringify(notification({ status: 'firing', alerts: [{ name: 'A', instance: 'i' }] })), 422, 'to', /no group #nobody/],
    ];
    for (const [path, body, status, field, reason] of cases) {
      const answer = await post(port, path, { token: OPS_TOKEN, body, type: 'application/json' });
      assert.equal(answer.status, status, `${path} ${body.slice(0, 60)}: ${JSON.stringify(answer.json)}`);
      assert.equal(answer.json.field, field, `${path} ${body.slice(0, 60)} names the field`);
      assert.match(String(answer.json.error), reason);
    }
    const invalidUtf8 = await post(port, '/v1/groups/ops', { token: OPS_TOKEN, body: Buffer.from([0x68, 0xc3, 0x28]), type: 'text/plain' });
    assert.deepEqual([invalidUtf8.status, invalidUtf8.json.error], [400, 'the body is not valid UTF-8 text']);
    const idClash = await post(port, '/v1/messages', { token: OPS_TOKEN, type: 'application/json', body: '{"to":"#ops","body":"x","id":"a"}', headers: { 'idempotency-key': 'b' } });
    assert.deepEqual([idClash.status, idClash.json.field], [422, 'id']);
    assert.equal(await hub.redis.xlen(`${hub.prefix}:in`), 0, 'nothing waits in notify:in');
    assert.equal((await hub.read('dead')).length, before, 'and no dead letter was written');
  });

  test('bad requests: huge bodies, slow clients, header floods, unknown paths and methods, wrong content types: a JSON error each', async () => {
    const huge = await post(port, '/v1/groups/ops', { token: OPS_TOKEN, body: Buffer.alloc(300 * 1024, 'a'), type: 'text/plain' });
    assert.deepEqual([huge.status, huge.json.error], [413, 'the body is over the 256 KiB limit of a request']);
    // Chunked, no Content-Length: counted as it comes, and cut.
    const chunked = await rawExchange(port, [
      `POST /v1/groups/ops HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${OPS_TOKEN}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`,
      ...Array.from({ length: 40 }, () => `2000\r\n${'b'.repeat(0x2000)}\r\n`),
    ]);
    assert.equal(chunked.status, 413, chunked.raw.slice(0, 200));
    assert.match(chunked.body, /over the 256 KiB limit/);

    const started = Date.now();
    const [slowBody, slowHeaders] = await Promise.all([
      rawExchange(port, [`POST /v1/groups/ops HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${OPS_TOKEN}\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly a part`]),
      rawExchange(port, ['POST /v1/groups/ops HTTP/1.1\r\nHost: x\r\n']),
    ]);
    assert.equal(slowBody.status, 408, slowBody.raw);
    assert.deepEqual(JSON.parse(slowBody.body), { error: 'the request was not received in time; send the whole request at once' });
    assert.equal(slowHeaders.status, 408, slowHeaders.raw);
    console.log(`slow clients dropped after ${Date.now() - started} ms (requestTimeout 1.5 s)`);

    const flood = Array.from({ length: 150 }, (_, i) => `X-Flood-${i}: ${i}\r\n`).join('');
    const floodAnswer = await rawExchange(port, [`POST /v1/groups/ops HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${OPS_TOKEN}\r\n${flood}Content-Length: 1\r\n\r\nx`]);
    assert.equal(floodAnswer.status, 431, floodAnswer.raw.slice(0, 200));
    assert.match(floodAnswer.body, /headers are too large \(at most 100 headers of 16 KiB in all\)/);
    const bigHeader = await rawExchange(port, [`POST /v1/groups/ops HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(20_000)}\r\n\r\n`]);
    assert.equal(bigHeader.status, 431);
    assert.match(bigHeader.body, /headers are too large/);
    const garbage = await rawExchange(port, ['HELLO THERE\r\n\r\n']);
    assert.equal(garbage.status, 400);
    assert.match(garbage.body, /not valid HTTP/);

    const unknown = await post(port, '/v2/anything', { token: OPS_TOKEN, body: 'x' });
    assert.equal(unknown.status, 404);
    assert.match(String(unknown.json.error), /POST \/v1\/messages, \/v1\/groups\/\{group\} and \/v1\/alertmanager\/\{group\}/);
    assert.equal((await post(port, '/v1/groups/ops/extra', { token: OPS_TOKEN, body: 'x' })).status, 404);
    const get = await post(port, '/v1/messages', { token: OPS_TOKEN, method: 'GET' });
    assert.deepEqual([get.status, get.headers.allow], [405, 'POST']);
    assert.equal((await post(port, '/v1/groups/ops', { token: OPS_TOKEN, method: 'DELETE' })).status, 405);

    const jsonToGroup = await post(port, '/v1/groups/ops', { token: OPS_TOKEN, body: '{}', type: 'application/json' });
    assert.equal(jsonToGroup.status, 415);
    assert.match(String(jsonToGroup.json.error), /send text\/plain, text\/markdown or text\/html/);
    const textToMessages = await post(port, '/v1/messages', { token: OPS_TOKEN, body: 'hi', type: 'text/plain' });
    assert.deepEqual([textToMessages.status, textToMessages.json.error], [415, 'Content-Type text/plain is not accepted here; send application/json']);
    assert.equal((await post(port, '/v1/groups/ops', { token: OPS_TOKEN, body: 'hi', type: 'text/plain; charset=latin1' })).status, 415);
    // A media type named like an Object property is still just an unknown type.
    assert.equal((await post(port, '/v1/groups/ops', { token: OPS_TOKEN, body: 'hi', type: 'constructor' })).status, 415);

    // The connection still works for the next producer after all that.
    assert.equal((await post(port, '/v1/groups/ops', { token: OPS_TOKEN, body: 'still here' })).status, 202);
  });

  test('no token appears in the log, the answers, hub status or the events', async () => {
    await post(port, '/v1/groups/ops', { token: OPS_TOKEN, body: `my token is ${OPS_TOKEN}` });
    const echoed = await post(port, '/v1/messages', { token: OPS_TOKEN, type: 'application/json', body: JSON.stringify({ to: `#${ALERTS_TOKEN}`, body: 'x' }) });
    assert.equal(echoed.status, 422);
    assert.ok(!JSON.stringify(echoed.json).includes(ALERTS_TOKEN), 'an answer echoing a value blanks the token');
    await eventually('the message delivered', () => hs.messages(rooms.ops!).some((e) => String(e.content.body).includes('my token is')));
    const everything = [hub.logs.join('\n'), JSON.stringify(await hub.read('events')), JSON.stringify(await hub.read('dead'))].join('\n');
    for (const { token } of TOKENS) assert.ok(!everything.includes(token), `token of ${token.slice(0, 4)}… never shown`);
    assert.ok(hub.logs.some((l) => l.includes('HTTP ingress listening')));
  });
});

describe('HTTP ingress: Redis away, and the configuration', () => {
  test('with Redis away the answer is 503 with Retry-After, nothing half-accepted; once back, 202', async () => {
    const redis = await startPrivateRedis({ durable: false });
    const prefix = testPrefix('http-ingress-503');
    const mappingFile = join(mkdtempSync(join(tmpdir(), 'hub-test-')), 'mapping.json');
    writeFileSync(mappingFile, JSON.stringify({ _id: 'ccs.notifications', mapping: { '#ops': { console: ['operator'] } } }));
    const app = await App.create({
      config: { prefix, redisUrl: redis.url, logLevel: 'silent', http: { port: 0, host: '127.0.0.1' }, httpIngress: { port: 0, host: '127.0.0.1' }, mapping: { file: mappingFile } },
      env: { HUB_INGRESS_TOKENS: JSON.stringify(TOKENS) },
    });
    try {
      await app.start({ channels: [] });
      const port = app.cradle.httpIngress.port!;
      await eventually('the ingress connected', async () => (await post(port, '/v1/groups/ops', { token: OPS_TOKEN, body: 'before' })).status === 202);
      await redis.kill();
      const away = await eventually('a 503', async () => {
        const answer = await post(port, '/v1/groups/ops', { token: OPS_TOKEN, body: 'while away' });
        return answer.status === 503 && answer;
      });
      assert.equal(away.headers['retry-after'], '1');
      assert.match(String(away.json.error), /^Redis cannot take the message now \(.+\); nothing was accepted: retry$/);
      await redis.start();
      await eventually('202 again', async () => (await post(port, '/v1/groups/ops', { token: OPS_TOKEN, body: 'after' })).status === 202);
      const { Redis } = await import('ioredis');
      const client = new Redis(redis.url);
      // Taken: still in notify:in, or already routed from it to the console channel's stream (no worker here reads that).
      const bodiesIn = async (stream: string) => ((await client.xrange(stream, '-', '+')) as Array<[string, string[]]>).map(([, f]) => f[f.indexOf('body') + 1]);
      const bodies = [...(await bodiesIn(`${prefix}:in`)), ...(await bodiesIn(`${prefix}:deliver:console`))];
      client.disconnect();
      assert.ok(!bodies.includes('while away'), 'what was answered 503 is not in the stream');
      assert.ok(bodies.includes('after'));
    } finally {
      await app.stop();
      await redis.close();
    }
  });

  test('tokens come from the environment only, and a bad value never repeats them', () => {
    assert.throws(() => resolveConfig({ httpIngress: { tokens: TOKENS } }, {}), /httpIngress\.tokens: producer tokens do not belong in the config file; set HUB_INGRESS_TOKENS/);
    const broken = `[{"name": "a", "token": "${OPS_TOKEN}"`;
    assert.throws(() => resolveConfig({}, { HUB_INGRESS_TOKENS: broken }), (err: Error) => /does not parse as JSON/.test(err.message) && !err.message.includes(OPS_TOKEN));
    const short = JSON.stringify([{ name: 'a', token: 'short', groups: ['#ops'] }]);
    assert.throws(() => resolveConfig({}, { HUB_INGRESS_TOKENS: short }), (err: Error) => /httpIngress\.tokens\.0\.token: expected a token of at least 16 characters/.test(err.message) && !err.message.includes('"short"'));
    assert.throws(() => resolveConfig({}, { HUB_INGRESS_TOKENS: JSON.stringify([{ ...TOKENS[0], rate: 'often' }]) }), /expected a rate such as "60\/min"/);
    assert.throws(() => resolveConfig({}, { HUB_INGRESS_TOKENS: JSON.stringify([TOKENS[0], { ...TOKENS[1], name: TOKENS[0]!.name }]) }), /two producers are named "ops-scripts"/);
    const config = resolveConfig({}, { HUB_INGRESS_TOKENS: JSON.stringify(TOKENS), HUB_INGRESS_PORT: '19465', HUB_INGRESS_HOST: '127.0.0.1' });
    assert.deepEqual([config.httpIngress.port, config.httpIngress.host, config.httpIngress.tokens.length], [19465, '127.0.0.1', 3]);
    assert.deepEqual(config.httpIngress.tokens[2]!.rate, { count: 2, periodMs: 60_000 });
    assert.deepEqual(resolveConfig({}, {}).httpIngress.tokens, [], 'no tokens: the ingress is off');
    const file = join(mkdtempSync(join(tmpdir(), 'hub-test-')), 'tokens.json');
    writeFileSync(file, `${JSON.stringify(TOKENS)}\n`);
    assert.equal(resolveConfig({}, { HUB_INGRESS_TOKENS_FILE: file }).httpIngress.tokens[1]!.name, 'alertmanager', 'HUB_INGRESS_TOKENS_FILE names a secret file');
  });
});
