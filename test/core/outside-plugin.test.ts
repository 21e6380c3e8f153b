import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { eventually } from '../support/hub.ts';
import { hubEnv, spawnHub } from '../support/processes.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

/** A plugin as a third party writes it, outside the repository, importing the API by its package name: it appends each delivery to a file and counts them. */
const plugin = (name: string) => `import { appendFileSync } from 'node:fs';
import { PLUGIN_API_VERSION, definePlugin, z } from 'notification-hub/plugin-api';

export default definePlugin({
  name: '${name}',
  apiVersion: PLUGIN_API_VERSION,
  description: 'append each delivery to a file',
  settings: { schema: z.object({}) },
  validateTarget: (target) => (/^[a-z]+$/.test(target) ? undefined : 'a ${name} target is a lower-case word'),
  createSender: ({ metrics }) => {
    const lines = metrics.counter('lines_total', 'Deliveries appended to the file.');
    return {
      async deliver({ messageId, channel, target, message }) {
        appendFileSync(process.env.LEDGER_FILE, JSON.stringify({ messageId, channel, target, body: message.body }) + '\\n');
        lines.inc();
        return {};
      },
    };
  },
});
`;

const dir = mkdtempSync(join(tmpdir(), 'hub-outside-plugin-'));
const prefix = testPrefix('outside');
const redis = new Redis(REDIS_URL);
after(async () => {
  await dropPrefix(prefix, redis);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

function write(path: string, text: string): void {
  mkdirSync(join(dir, path, '..'), { recursive: true });
  writeFileSync(join(dir, path), text);
}

test('plugins outside the tree, importing notification-hub/plugin-api, make their deliveries and count them on /metrics: a HUB_PLUGIN_DIRS folder and an npm package named in hub.config', async () => {
  // The project the hub runs in: its hub.config.js names a package installed in its own node_modules.
  write('project/package.json', JSON.stringify({ name: 'ops-project', type: 'module', private: true }));
  write('project/hub.config.js', `export default { plugins: { modules: ['hub-plugin-tally'] } };\n`);
  write('project/node_modules/hub-plugin-tally/package.json', JSON.stringify({ name: 'hub-plugin-tally', version: '1.0.0', type: 'module', exports: { '.': './main.js' } }));
  write('project/node_modules/hub-plugin-tally/main.js', plugin('tally'));
  // A folder of plugins elsewhere, named by HUB_PLUGIN_DIRS.
  write('plugins/ledger/index.js', plugin('ledger'));
  write('mapping.json', JSON.stringify({ mapping: { '#ops': { ledger: ['alice', 'bob'], tally: ['carol'] } } }));
  const ledger = join(dir, 'ledger.jsonl');
  const hub = spawnHub(['start'], {
    name: 'hub with outside plugins',
    cwd: join(dir, 'project'),
    env: hubEnv(prefix, join(dir, 'mapping.json'), { HUB_PLUGIN_DIRS: join(dir, 'plugins'), LEDGER_FILE: ledger }),
  });
  try {
    await hub.waitFor(/"msg":"started"/, 60_000);
    const id = (await redis.xadd(`${prefix}:in`, '*', 'to', '#ops', 'format', 'text', 'body', 'from outside')) as string;
    const lines = await eventually('the three deliveries', () => {
      if (!existsSync(ledger)) return undefined;
      // Whole lines only: the file exists from the moment an append opens it, before its line is written.
      const rows = readFileSync(ledger, 'utf8').split('\n').slice(0, -1).map((l) => JSON.parse(l) as { messageId: string; channel: string; target: string; body: string });
      return rows.length >= 3 ? rows : undefined;
    }, 60_000);
    assert.deepEqual(lines.map((l) => `${l.channel}:${l.target}`).sort(), ['ledger:alice', 'ledger:bob', 'tally:carol']);
    assert.ok(lines.every((l) => l.messageId === id && l.body === 'from outside'));
    const port = hub.logs.find((l) => l.msg === 'serving /healthz, /readyz and /metrics')?.port;
    const metrics = await (await fetch(`http://127.0.0.1:${String(port)}/metrics`)).text();
    assert.match(metrics, /^hub_plugin_ledger_lines_total 2$/m);
    assert.match(metrics, /^hub_plugin_tally_lines_total 1$/m);
  } finally {
    await hub.stop();
  }
});
