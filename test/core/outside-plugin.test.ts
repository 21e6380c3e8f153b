import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { eventually } from '../support/hub.ts';
import { spawnHub } from '../support/processes.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

// A plugin as a third party writes it: a folder outside the repository that imports the API by its package name.
const PLUGIN = `import { appendFileSync } from 'node:fs';
import { PLUGIN_API_VERSION, definePlugin, z } from 'notification-hub/plugin-api';

export default definePlugin({
  name: 'ledger',
  apiVersion: PLUGIN_API_VERSION,
  description: 'append each delivery to a file',
  settings: { schema: z.object({}) },
  validateTarget: (target) => (/^[a-z]+$/.test(target) ? undefined : 'a ledger target is a lower-case word'),
  createSender: () => ({
    async deliver({ messageId, target, message }) {
      appendFileSync(process.env.LEDGER_FILE, JSON.stringify({ messageId, target, body: message.body }) + '\\n');
      return {};
    },
  }),
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

test('a plugin in a HUB_PLUGIN_DIRS folder outside the tree, importing notification-hub/plugin-api, makes its deliveries', async () => {
  mkdirSync(join(dir, 'plugins', 'ledger'), { recursive: true });
  writeFileSync(join(dir, 'plugins', 'ledger', 'index.js'), PLUGIN);
  writeFileSync(join(dir, 'mapping.json'), JSON.stringify({ mapping: { '#ops': { ledger: ['alice', 'bob'] } } }));
  const ledger = join(dir, 'ledger.jsonl');
  const hub = spawnHub(['start'], {
    name: 'hub with an outside plugin',
    env: {
      REDIS_URL,
      HUB_PREFIX: prefix,
      MAPPING_FILE: join(dir, 'mapping.json'),
      HUB_PLUGIN_DIRS: join(dir, 'plugins'),
      HUB_HTTP_PORT: '0',
      HUB_HTTP_HOST: '127.0.0.1',
      LEDGER_FILE: ledger,
    },
  });
  try {
    await hub.waitFor(/"msg":"started"/, 60_000);
    const id = (await redis.xadd(`${prefix}:in`, '*', 'to', '#ops', 'format', 'text', 'body', 'from outside')) as string;
    const lines = await eventually('both ledger deliveries', () => {
      if (!existsSync(ledger)) return undefined;
      const rows = readFileSync(ledger, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { messageId: string; target: string; body: string });
      return rows.length >= 2 ? rows : undefined;
    }, 60_000);
    assert.deepEqual(lines.map((l) => l.target).sort(), ['alice', 'bob']);
    assert.ok(lines.every((l) => l.messageId === id && l.body === 'from outside'));
  } finally {
    await hub.stop();
  }
});
