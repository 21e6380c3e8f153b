/**
 * The operations port as a monitoring system reads it: /readyz's mapping
 * warning is there while the source is away or a revision is refused, and
 * gone once the source is back to the mapping in force; /metrics has the
 * standard process_* and nodejs_* names; HUB_HTTP_HOST sets the address the
 * port binds to, and a port that cannot be opened is a sentence.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { after, afterEach, describe, test } from 'node:test';
import { freePort } from '../servers/free-port.ts';
import { httpGet } from '../support/e2e.ts';
import { type TestHub, eventually, startTestHub } from '../support/hub.ts';
import { REPO_ROOT, killAll, spawnHub } from '../support/processes.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

const mapping = { '#ops': { webhook: ['https://hooks.example.org/ops'] } };

describe('/readyz and /metrics of a running hub', () => {
  let hub: TestHub;
  after(async () => hub?.stop());

  const readyz = async () => httpGet(hub.app.http!.port, '/readyz');

  test('the mapping warning clears once the source is back to the mapping in force', async () => {
    hub = await startTestHub({ mapping, name: 'ops-port', config: { plugins: { dirs: [], modules: [`${REPO_ROOT}/plugins/webhook/index.ts`] } } });
    await eventually('the mapping in force', () => hub.app.cradle.mappingStore.current);
    assert.deepEqual([(await readyz()).status, (await readyz()).body], [200, 'ready\n']);

    // The source away (a file that is not JSON): routing goes on with the mapping in force, with a warning.
    writeFileSync(hub.mappingFile, '{ "_id": "ccs.notifications", "mapping": ');
    const away = await eventually('the warning', async () => ((await readyz()).body.includes('warning') ? await readyz() : undefined));
    assert.equal(away.status, 200);
    assert.match(away.body, /^ready \(warning: mapping file .*: not valid JSON: /);
    hub.writeMapping(mapping);
    await eventually('the warning to clear', async () => (await readyz()).body === 'ready\n');

    // A revision refused, then the one in force written back.
    hub.writeMapping({ '#ops': { webhook: ['ftp://hooks.example.org/ops'] } });
    const refused = await eventually('the refusal', async () => ((await readyz()).body.includes('refused') ? await readyz() : undefined));
    assert.match(refused.body, /^ready \(warning: revision file-[0-9a-f]+ refused: mapping\["#ops"\]\.webhook\[0\]: not an http\(s\) URL \(ftp:\)\)\n$/);
    hub.writeMapping(mapping);
    await eventually('the warning to clear', async () => (await readyz()).body === 'ready\n');
  });

  test('/metrics carries the standard process_* and nodejs_* names, and none of the old hub_process_* ones', async () => {
    const { body } = await httpGet(hub.app.http!.port, '/metrics');
    assert.match(body, /^process_cpu_seconds_total \d/m);
    assert.match(body, /^process_resident_memory_bytes \d/m);
    assert.match(body, /^nodejs_heap_size_used_bytes \d/m);
    assert.match(body, /^nodejs_eventloop_lag_seconds \d/m);
    assert.doesNotMatch(body, /hub_process_/);
  });
});

describe('HUB_HTTP_HOST and HUB_HTTP_PORT', () => {
  const prefixes: string[] = [];
  afterEach(async () => {
    await killAll();
    for (const prefix of prefixes.splice(0)) await dropPrefix(prefix);
  });

  const env = (overrides: Record<string, string>) => ({
    REDIS_URL,
    HUB_PREFIX: prefixes[prefixes.push(testPrefix('ops-host')) - 1]!,
    MAPPING_FILE: `${REPO_ROOT}/mapping.json`,
    LOG_LEVEL: 'info',
    ...overrides,
  });

  test('HUB_HTTP_HOST sets the address the port binds to: 127.0.0.2 answers, 127.0.0.1 does not', async () => {
    const port = await freePort();
    const hub = spawnHub(['start', '--only', 'hub'], { env: env({ HUB_HTTP_HOST: '127.0.0.2', HUB_HTTP_PORT: String(port) }), name: 'hub on 127.0.0.2' });
    const serving = JSON.parse(await hub.waitFor(/"msg":"serving \/healthz/, 60_000)) as { host: string; port: number };
    assert.deepEqual(serving.host, '127.0.0.2');
    const health = await fetch(`http://127.0.0.2:${port}/healthz`);
    assert.equal(health.status, 200);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'nothing listens on 127.0.0.1');
  });

  test('a port in use is a sentence naming the address and what to set, exit code 78', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const hub = spawnHub(['start', '--only', 'hub'], { env: env({ HUB_HTTP_HOST: '127.0.0.1', HUB_HTTP_PORT: String(port) }), name: 'hub on a taken port' });
      assert.equal((await hub.exited).code, 78);
      const stderr = hub.output.filter((l) => !l.startsWith('{'));
      assert.deepEqual(stderr, [`hub: cannot serve /healthz, /readyz and /metrics on 127.0.0.1:${port}: the port is in use by another process; set HUB_HTTP_PORT to a free port (0 picks one)`]);
    } finally {
      taken.close();
    }
  });
});
