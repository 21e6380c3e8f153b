import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startSmtpServer, type TestSmtpServer } from '../servers/smtp.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';

describe('ingress: one XADD becomes one delivery per target', () => {
  let smtp: TestSmtpServer;
  let hub: TestHub;

  before(async () => {
    smtp = await startSmtpServer();
    hub = await startTestHub({
      name: 'ingress',
      mapping: {
        '#admins': { email: ['ops@example.org', 'Will <will@example.org>'], include: ['#oncall'] },
        '#oncall': { email: ['WILL@example.org', 'pager@example.org'] },
        '#staff': { email: ['staff@example.org'] },
      },
      env: { SMTP_URL: smtp.url(), EMAIL_FROM: 'hub@example.org' },
      config: { plugins: { dirs: [], modules: ['./plugins/email/index.ts'] }, channels: { email: { tlsRejectUnauthorized: false } } },
    });
  });
  after(async () => {
    await hub?.stop();
    await smtp?.close();
  });

  test('flat fields reach every target of the group and its includes, each once', async () => {
    const id = await hub.send({ to: '#admins,#oncall', subject: 'Orders API failing', body: '<p><b>/api/orders</b> failed</p>' });
    const mails = await smtp.waitForMessages(3);
    const recipients = mails.flatMap((m) => m.envelope.to).sort();
    assert.deepEqual(recipients, ['ops@example.org', 'pager@example.org', 'will@example.org']);
    assert.equal(mails[0]!.parsed.subject, 'Orders API failing');
    const events = await eventually('three sent events', async () => {
      const sent = (await hub.read('events')).filter((e) => e.type === 'sent' && e.entry === id);
      return sent.length === 3 && sent;
    });
    assert.equal(events.length, 3);
  });
});
