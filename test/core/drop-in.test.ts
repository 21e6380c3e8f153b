import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startWebhookServer, verifySignature, type TestWebhookServer } from '../servers/webhook.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';

/** A fresh plugins folder holding a copy of plugins/webhook, as it is: it imports the API as `notification-hub/plugin-api`, which resolves anywhere. */
function dropInWebhook(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hub-drop-in-'));
  cpSync(resolve(import.meta.dirname, '../../plugins/webhook'), join(dir, 'webhook'), { recursive: true });
  return dir;
}

describe('drop-in: a plugin folder copied into a new plugins directory adds its channel', () => {
  let dir: string;
  let receiver: TestWebhookServer;

  before(async () => {
    dir = dropInWebhook();
    receiver = await startWebhookServer();
  });
  after(async () => {
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the copied webhook plugin is loaded from the new folder and delivers a message as signed JSON', async () => {
    const hub = await startTestHub({
      name: 'drop-in',
      config: { plugins: { dirs: [dir], modules: [] } },
      env: { WEBHOOK_SECRET: 'drop-in-shared-secret' },
      mapping: { '#ops': { webhook: [receiver.url('/hooks/ops')] } },
    });
    try {
      const plugins = hub.app.cradle.plugins;
      assert.deepEqual([...plugins.names], ['webhook']);
      assert.equal(plugins.entries.get('webhook')!.source, join(dir, 'webhook', 'index.ts'));
      assert.deepEqual(plugins.configured, ['webhook']);

      const entry = await hub.send({ to: '#ops', subject: 'Disk full', body: '<p>db1 is at <b>95%</b></p>' });
      const request = await eventually('the webhook request', () => receiver.requests.find((r) => (r.json as { messageId?: string })?.messageId === entry));
      assert.equal(request.method, 'POST');
      assert.equal(request.path, '/hooks/ops');
      assert.equal(request.headers['content-type'], 'application/json');
      assert.equal(request.headers['x-hub-delivery'], `${hub.prefix}:${entry}:0`);
      assert.ok(verifySignature(request.raw, request.headers['x-hub-signature-256'], 'drop-in-shared-secret'), 'signed with WEBHOOK_SECRET');
      assert.deepEqual(request.json, {
        id: `${hub.prefix}:${entry}:0`,
        messageId: entry,
        channel: 'webhook',
        target: receiver.url('/hooks/ops'),
        to: ['#ops'],
        subject: 'Disk full',
        body: '<p>db1 is at <b>95%</b></p>',
        format: 'html',
        html: '<p>db1 is at <b>95%</b></p>',
        text: 'db1 is at 95%',
      });
      const sent = await eventually('the sent event', async () => (await hub.read('events')).find((e) => e.type === 'sent' && e.entry === entry));
      assert.equal(sent.channel, 'webhook');
      assert.deepEqual(await hub.read('dead'), []);
    } finally {
      await hub.stop();
    }
  });

  test('a bad webhook target refuses the mapping with its path; the hub consumes nothing until a good one is written', async () => {
    const hub = await startTestHub({
      name: 'drop-in-bad',
      config: { plugins: { dirs: [dir], modules: [] } },
      mapping: { '#ops': { webhook: [receiver.url('/hooks/good'), 'ftp://files.example.org/alerts'] } },
    });
    try {
      const store = hub.app.cradle.mappingStore;
      assert.equal(store.current, undefined);
      assert.match(store.lastError ?? '', /^revision file-[0-9a-f]+ refused: mapping\["#ops"\]\.webhook\[1\]: not an http\(s\) URL \(ftp:\)$/);
      assert.ok(
        hub.logs.some((line) => line.includes('mapping revision refused') && line.includes('mapping[\\"#ops\\"].webhook[1]: not an http(s) URL (ftp:)')),
        'the refusal is logged with the path',
      );

      // With no mapping ever in force, a message waits in the stream instead of being dead-lettered.
      const entry = await hub.send({ to: '#ops', body: 'waiting for a mapping' });
      await sleep(500);
      assert.equal(await hub.redis.xlen(`${hub.prefix}:in`), 1);
      assert.deepEqual(await hub.read('dead'), []);

      hub.writeMapping({ '#ops': { webhook: [receiver.url('/hooks/good')] } });
      await eventually('the corrected mapping in force', () => store.current);
      assert.equal(store.lastError, undefined);
      const request = await eventually('the waiting message delivered', () => receiver.requests.find((r) => (r.json as { messageId?: string })?.messageId === entry));
      assert.equal(request.path, '/hooks/good');
      assert.equal((request.json as { body: string }).body, 'waiting for a mapping');
      assert.deepEqual(await hub.read('dead'), []);
    } finally {
      await hub.stop();
    }
  });
});
