import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../core/logger.ts';
import type { ChannelSender, Delivery } from '../../core/plugin-api.ts';
import plugin from '../../plugins/console/index.ts';
import { Redactor } from '../../core/redactor.ts';
import { pluginContext } from '../support/plugin-context.ts';

function delivery(overrides: Partial<Delivery['message']> = {}): Delivery {
  return {
    id: '1700000000000-0:console:0',
    messageId: '1700000000000-0',
    channel: 'console',
    target: 'operator',
    attempt: 1,
    message: { to: ['#admins'], subject: 'Orders API failing', body: '<p><b>/api/orders</b> failed<br>12 times</p>', format: 'html', ...overrides },
  };
}

describe('console plugin', () => {
  test('targets: a short name without spaces', () => {
    for (const good of ['operator', 'ops-team', 'on_call@night', 'x'.repeat(100)]) assert.equal(plugin.validateTarget(good), undefined, good);
    for (const bad of ['', 'two words', 'a\nb', 'x'.repeat(101)]) {
      assert.match(plugin.validateTarget(bad) ?? '', /is not a console target: write a short name without spaces/, JSON.stringify(bad));
    }
  });

  test('needs no settings: it runs on an empty environment', () => {
    assert.deepEqual(plugin.settings.schema.parse({}), {});
  });

  describe('a delivery is one JSON line in the log, even when the log level is silent', () => {
    const lines: string[] = [];
    let sender: ChannelSender;
    let close: () => Promise<void>;

    before(async () => {
      const context = await pluginContext(plugin, {});
      const destination = new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      });
      // The hub's own logger at LOG_LEVEL=silent: the hub logs nothing, the console channel still prints.
      const logger = createLogger({ level: 'silent', redactor: new Redactor(), destination });
      sender = await plugin.createSender({ ...context, logger: logger.child({ plugin: 'console' }) });
      close = context.close;
    });
    after(() => close());

    test('the target, the groups, the subject and the text, and a readable summary', async () => {
      lines.length = 0;
      assert.deepEqual(await sender.deliver(delivery(), AbortSignal.timeout(5000)), {});
      assert.equal(lines.length, 1);
      assert.ok(lines[0]!.endsWith('}\n') && !lines[0]!.slice(0, -1).includes('\n'), 'one line');
      const line = JSON.parse(lines[0]!) as Record<string, unknown>;
      assert.deepEqual(
        { level: line.level, notification: line.notification, delivery: line.delivery, target: line.target, to: line.to, subject: line.subject, text: line.text, msg: line.msg },
        {
          level: 'info',
          notification: '1700000000000-0',
          delivery: '1700000000000-0:console:0',
          target: 'operator',
          to: ['#admins'],
          subject: 'Orders API failing',
          text: '/api/orders failed\n12 times',
          msg: '#admins → operator: Orders API failing: /api/orders failed 12 times',
        },
      );
    });

    test('a 64 KiB body: the whole text in the line, the summary cut to 200 characters', async () => {
      lines.length = 0;
      const body = 'word '.repeat(13_000).trim();
      await sender.deliver(delivery({ body, format: 'text', subject: undefined }), AbortSignal.timeout(5000));
      assert.equal(lines.length, 1);
      const line = JSON.parse(lines[0]!) as { text: string; msg: string };
      assert.equal(line.text, body);
      assert.equal(line.msg.length, '#admins → operator: '.length + 200);
      assert.ok(line.msg.endsWith('…'));
    });
  });
});
