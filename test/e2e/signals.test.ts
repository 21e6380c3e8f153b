/**
 * Stopping the hub as service managers do: `kill -TERM` on `npm start`, on
 * `hub start`, and on the Docker image's entry running as PID 1. Each stops
 * gracefully, leaves no process behind, and its last line says that it
 * stopped and how many deliveries in flight it finished. A second signal
 * while stopping exits at once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { freePort } from '../servers/free-port.ts';
import { httpGet } from '../support/e2e.ts';
import { eventually } from '../support/hub.ts';
import { type HubProcess, REPO_ROOT, killAll, spawnHub } from '../support/processes.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

const dir = mkdtempSync(join(tmpdir(), 'hub-signals-'));
const redis = new Redis(REDIS_URL);
const prefixes: string[] = [];

afterEach(killAll);
after(async () => {
  for (const prefix of prefixes) await dropPrefix(prefix, redis);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

/** A hub's environment: its own prefix, a free HTTP port, a temporary mapping routing `#ops` to `webhookUrl`. */
async function hubEnv(webhookUrl = 'http://127.0.0.1:9/unused'): Promise<Record<string, string>> {
  const prefix = testPrefix('signals');
  prefixes.push(prefix);
  const mapping = join(dir, `${prefix}.json`);
  writeFileSync(mapping, JSON.stringify({ _id: 'ccs.notifications', mapping: { '#ops': { webhook: [webhookUrl] } } }));
  return { REDIS_URL, HUB_PREFIX: prefix, MAPPING_FILE: mapping, HUB_HTTP_PORT: String(await freePort()), HUB_HTTP_HOST: '127.0.0.1', LOG_LEVEL: 'info' };
}

/** Every process under `pid` (Linux /proc), children first seen by parent id. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length) for (const child of children.get(queue.shift()!) ?? []) queue.push(child), found.push(child);
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/** A webhook receiver that holds each request until the test releases it: a delivery in flight for as long as the test wants. */
async function heldWebhook(): Promise<{ url: string; received: number; release(): void; close(): void }> {
  const held: ServerResponse<IncomingMessage>[] = [];
  let received = 0;
  const server = createServer((req, res) => {
    req.resume().on('end', () => {
      received += 1;
      held.push(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const release = () => held.splice(0).forEach((res) => res.writeHead(200).end('{"ok":true}'));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ops`,
    get received() {
      return received;
    },
    release,
    close: () => {
      release();
      server.closeAllConnections();
      server.close();
    },
  };
}

const lastLog = (p: HubProcess) => p.logs.at(-1) ?? {};
const lastLine = (p: HubProcess) => p.output.at(-1) ?? '';

describe('signals: a graceful stop, whoever sends it', () => {
  test('kill -TERM <pid of npm start>: the hub stops gracefully and no node is left running', async () => {
    const env = await hubEnv();
    const npm = spawnHub([], { env, name: 'npm start', command: ['npm', 'start'] });
    await npm.waitFor(/"msg":"started"/, 60_000);
    const tree = descendants(npm.pid);
    const hubPid = Number(npm.logs.find((l) => l.msg === 'started')?.pid);
    assert.ok(tree.includes(hubPid), `the hub (${hubPid}) runs under npm (${npm.pid}): ${tree.join(', ')}`);
    assert.equal((await httpGet(Number(env.HUB_HTTP_PORT), '/healthz')).status, 200);

    npm.child.kill('SIGTERM');
    const exit = await npm.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, npm.output.slice(-10).join('\n'));
    await eventually('every process npm started to be gone', () => tree.every((pid) => !alive(pid)), 10_000);
    assert.equal(lastLog(npm).msg, 'stopped: 0 deliveries in flight finished', lastLine(npm));
    assert.equal(lastLog(npm).pid, hubPid);
    await assert.rejects(httpGet(Number(env.HUB_HTTP_PORT), '/healthz'), 'the port is closed');
  });

  test('SIGTERM to npm start and to node at once, as systemd signals a service by default: one graceful stop', async () => {
    const env = await hubEnv();
    const npm = spawnHub([], { env, name: 'npm start', command: ['npm', 'start'] });
    await npm.waitFor(/"msg":"started"/, 60_000);
    const hubPid = Number(npm.logs.find((l) => l.msg === 'started')?.pid);

    // KillMode=control-group: every process of the unit gets the signal, and npm forwards its own to node.
    npm.child.kill('SIGTERM');
    process.kill(hubPid, 'SIGTERM');
    assert.deepEqual(await npm.exited, { code: 0, signal: null }, npm.output.slice(-10).join('\n'));
    assert.equal(lastLog(npm).msg, 'stopped: 0 deliveries in flight finished', lastLine(npm));
    assert.equal(npm.logs.filter((l) => /^second signal/.test(String(l.msg))).length, 0, 'no "second signal" exit');
  });

  /** `hub start` with one delivery held at its receiver (in flight), then SIGTERM, and `check` once it said it is stopping. */
  async function stopWithDeliveryInFlight(check: (hub: HubProcess, env: Record<string, string>, receiver: Awaited<ReturnType<typeof heldWebhook>>, entry: string) => Promise<void>): Promise<void> {
    const receiver = await heldWebhook();
    try {
      const env = await hubEnv(receiver.url);
      const hub = spawnHub(['start'], { env, name: 'hub start' });
      await hub.waitFor(/"msg":"started"/, 60_000);
      const entry = (await redis.xadd(`${env.HUB_PREFIX}:in`, '*', 'to', '#ops', 'body', 'in flight at the stop')) as string;
      await eventually('the delivery to reach the receiver', () => receiver.received === 1, 30_000);
      hub.child.kill('SIGTERM');
      await hub.waitFor(/"msg":"stopping: deliveries in flight finish/);
      await check(hub, env, receiver, entry);
    } finally {
      receiver.close();
    }
  }

  test('kill -TERM <pid of hub start> with a delivery in flight: it is finished, sent once, and the last line says so', async () => {
    await stopWithDeliveryInFlight(async (hub, env, receiver, entry) => {
      receiver.release();
      assert.deepEqual(await hub.exited, { code: 0, signal: null }, hub.output.slice(-10).join('\n'));
      assert.equal(lastLog(hub).msg, 'stopped: 1 delivery in flight finished', lastLine(hub));
      assert.equal(lastLog(hub).finished, 1);

      const events = (await redis.xrange(`${env.HUB_PREFIX}:events`, '-', '+')) as Array<[string, string[]]>;
      const sent = events.filter(([, f]) => f.includes('sent') && f.includes(entry));
      assert.equal(sent.length, 1, 'recorded as sent');
      assert.equal(await redis.xlen(`${env.HUB_PREFIX}:deliver:webhook`), 0, 'nothing left pending');
      assert.equal(receiver.received, 1);
    });
  });

  test('a second signal while stopping exits at once, leaving what was in flight pending', async () => {
    await stopWithDeliveryInFlight(async (hub, env) => {
      // A second request, not the first one delivered twice (the same signal within a second counts once).
      await sleep(1100);
      hub.child.kill('SIGTERM');
      assert.deepEqual(await hub.exited, { code: 143, signal: null });
      assert.match(String(lastLog(hub).msg), /^second signal while stopping: exiting now; deliveries in flight stay pending for another process$/);
      assert.equal(await redis.xlen(`${env.HUB_PREFIX}:deliver:webhook`), 1, 'the delivery stays in its stream for the next worker');
    });
  });

  test("the Docker image's entry runs node as PID 1, and SIGTERM to it stops the hub gracefully", async () => {
    const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1] ?? 'null') as string[] | null;
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? 'null') as string[] | null;
    // Exec form, node itself (with its flags): no shell or npm in between to swallow the signal.
    assert.ok(entrypoint, 'the Dockerfile has an exec-form ENTRYPOINT');
    assert.equal(entrypoint[0], 'node');
    assert.equal(entrypoint.at(-1), 'core/cli/main.js');
    const flags = entrypoint.slice(1, -1);
    assert.ok(flags.every((flag) => flag.startsWith('--')), `only Node flags between node and the script: ${flags.join(' ')}`);
    assert.deepEqual(cmd, ['start']);

    // The same entry on the sources, flags and all, as PID 1 of a PID namespace of its own, as in a container.
    const env = await hubEnv();
    const command = ['unshare', '--user', '--map-root-user', '--pid', '--fork', process.execPath, ...flags, join(REPO_ROOT, 'core/cli/main.ts')];
    const container = spawnHub(cmd, { env, name: 'entry as PID 1', command });
    await container.waitFor(/"msg":"started"/, 60_000);
    assert.equal(container.logs.find((l) => l.msg === 'started')?.pid, 1, 'node is PID 1 in its namespace');
    const [node] = descendants(container.pid);
    assert.ok(node !== undefined && alive(node));

    process.kill(node, 'SIGTERM');
    assert.deepEqual(await container.exited, { code: 0, signal: null }, container.output.slice(-10).join('\n'));
    assert.equal(lastLog(container).msg, 'stopped: 0 deliveries in flight finished', lastLine(container));
    assert.equal(alive(node), false);
  });
});
