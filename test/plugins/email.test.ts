import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressObject } from 'mailparser';
import { isPermanent, isRetryable, type Delivery } from '../../core/plugin-api.ts';
import plugin from '../../plugins/email/index.ts';
import { composeMail, messageIdFor } from '../../plugins/email/message.ts';
import { transportOptions } from '../../plugins/email/sender.ts';
import { settingsSchema, type EmailSettings } from '../../plugins/email/settings.ts';
import { startSmtpServer, type TestSmtpServer } from '../servers/smtp.ts';
import { deliveryFailure, openSender } from '../support/plugin-context.ts';

const FROM = 'Notification hub <hub@hub.example.org>';

function delivery(overrides: Partial<Delivery> & { subject?: string; body?: string; format?: 'html' | 'text' | 'markdown' } = {}): Delivery {
  const { subject, body, format, ...rest } = overrides;
  return {
    id: `1700000000000-0:email:${rest.target ?? 'will@half-shot.uk'}`,
    messageId: '1700000000000-0',
    channel: 'email',
    target: 'will@half-shot.uk',
    attempt: 1,
    message: {
      to: ['#admins'],
      subject: 'subject' in overrides ? subject : 'Orders API failing',
      body: body ?? '<p><b>/api/orders</b> failed 12 times in 5 min</p>',
      format: format ?? 'html',
    },
    ...rest,
  };
}

/** A sender against `server`, closed (with its Redis context) by the returned function. */
function openEmailSender(server: TestSmtpServer, overrides: Partial<EmailSettings> = {}) {
  return openSender(plugin, {
    url: server.url(),
    from: FROM,
    maxConnections: 5,
    tlsRejectUnauthorized: true,
    tlsCa: server.ca,
    connectTimeoutMs: 5_000,
    ...overrides,
  });
}

function single(address: AddressObject | AddressObject[] | undefined) {
  assert.ok(address && !Array.isArray(address));
  assert.equal(address.value.length, 1);
  return address.value[0];
}

const signal = () => AbortSignal.timeout(20_000);

describe('email plugin against a real SMTP server', () => {
  let server: TestSmtpServer;
  before(async () => {
    server = await startSmtpServer();
  });
  after(async () => {
    await server.close();
  });

  test('delivers over STARTTLS with login: headers, envelope, sanitized HTML and a readable text part', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server);
    try {
      const body =
        '<p><b>/api/orders</b> failed 12 times in 5 min</p>' +
        '<script>alert(1)</script><img src="https://x.example/a.png" onerror="alert(2)">' +
        '<a href="javascript:alert(3)">click</a> <a href="https://status.example.org">status page</a>';
      const receipt = await sender.deliver(delivery({ body }), signal());
      const [mail] = await server.waitForMessages(1);
      assert.ok(mail);
      assert.equal(mail.secure, true, 'STARTTLS was used');
      assert.equal(mail.user, 'hub', 'logged in');
      assert.deepEqual(mail.envelope, { from: 'hub@hub.example.org', to: ['will@half-shot.uk'] });

      const { parsed } = mail;
      assert.deepEqual(single(parsed.from), { name: 'Notification hub', address: 'hub@hub.example.org' });
      assert.equal(single(parsed.to)?.address, 'will@half-shot.uk');
      assert.equal(parsed.subject, 'Orders API failing');
      assert.match(parsed.messageId ?? '', /^<[0-9a-f]{40}@hub\.example\.org>$/);
      assert.equal(receipt.peerId, parsed.messageId);
      assert.match(receipt.details?.response ?? '', /^250 /);
      assert.equal(parsed.headers.get('x-notification-hub-delivery'), delivery().id);
      assert.equal(parsed.headers.get('auto-submitted'), 'auto-generated');
      assert.match(mail.raw, /^Content-Type: multipart\/alternative;/im);

      const html = String(parsed.html);
      assert.match(html, /<b>\/api\/orders<\/b> failed 12 times in 5 min/);
      assert.match(html, /href="https:\/\/status\.example\.org"/);
      assert.doesNotMatch(html, /<script|alert\(1\)/i);
      assert.doesNotMatch(html, /onerror/i);
      assert.doesNotMatch(html, /javascript:/i);

      const text = parsed.text ?? '';
      assert.match(text, /\/api\/orders failed 12 times in 5 min/);
      assert.match(text, /status page \[https:\/\/status\.example\.org\]/);
      assert.doesNotMatch(text, /<[a-z]/i, 'no markup in the text part');
    } finally {
      await close();
    }
  });

  test('Message-ID is the same for a retry of one delivery and differs between deliveries', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server);
    try {
      const first = await sender.deliver(delivery({ id: 'msg-1:email:a' }), signal());
      const retry = await sender.deliver({ ...delivery({ id: 'msg-1:email:a' }), attempt: 2 }, signal());
      const other = await sender.deliver(delivery({ id: 'msg-2:email:a' }), signal());
      const mails = await server.waitForMessages(3);
      assert.equal(first.peerId, retry.peerId);
      assert.notEqual(first.peerId, other.peerId);
      assert.deepEqual(
        mails.map((m) => m.parsed.messageId),
        [first.peerId, retry.peerId, other.peerId],
      );
    } finally {
      await close();
    }
  });

  test('a "Name <a@b.c>" target gets the name in To and the address in the envelope', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server);
    try {
      await sender.deliver(delivery({ target: 'On call <OnCall@Half-Shot.uk>' }), signal());
      const [mail] = await server.waitForMessages(1);
      // nodemailer lower-cases the domain (IDNA); the user part is left as written.
      assert.deepEqual(single(mail?.parsed.to), { name: 'On call', address: 'OnCall@half-shot.uk' });
      assert.deepEqual(mail?.envelope.to, ['OnCall@half-shot.uk']);
    } finally {
      await close();
    }
  });

  test('without a subject, the subject is the first 78 characters of the body as text', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server);
    try {
      const body = '**Disk full** on `db-1`:\n\n' + 'the volume /var/lib/postgresql has 0 bytes left, writes are failing since 04:12 UTC';
      await sender.deliver(delivery({ subject: undefined, body, format: 'markdown' }), signal());
      const [mail] = await server.waitForMessages(1);
      const subject = mail?.parsed.subject ?? '';
      assert.ok(subject.startsWith('Disk full on db-1: the volume /var/lib/postgresql'), subject);
      assert.ok(subject.length <= 78, `${subject.length} characters`);
      assert.ok(subject.endsWith('…'));
    } finally {
      await close();
    }
  });

  test('CR/LF in the subject does not make a header', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server);
    try {
      const subject = 'Alert\r\nBcc: attacker@evil.example\r\nX-Injected: yes\n\nbody?';
      await sender.deliver(delivery({ subject }), signal());
      const [mail] = await server.waitForMessages(1);
      assert.ok(mail);
      assert.equal(mail.parsed.subject, 'Alert Bcc: attacker@evil.example X-Injected: yes body?');
      assert.equal(mail.parsed.headers.has('x-injected'), false);
      assert.equal(mail.parsed.headers.has('bcc'), false);
      assert.equal(mail.parsed.bcc, undefined);
      assert.deepEqual(mail.envelope.to, ['will@half-shot.uk']);
      const headerNames = mail.parsed.headerLines.map((h) => h.key);
      assert.equal(headerNames.filter((k) => k === 'subject').length, 1);
    } finally {
      await close();
    }
  });

  test('a target with a line break is refused as permanent, before anything is sent', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server);
    try {
      const err = await deliveryFailure(sender.deliver(delivery({ target: 'Eve\r\nBcc: x@evil.example <eve@example.org>' }), signal()));
      assert.ok(isPermanent(err));
      assert.equal(server.messages.length, 0);
    } finally {
      await close();
    }
  });

  test('421 is retryable, and the next try succeeds', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server);
    try {
      server.failNextMessages(1);
      const err = await deliveryFailure(sender.deliver(delivery(), signal()));
      assert.ok(isRetryable(err), `${err.name}: ${err.message}`);
      assert.equal((err as { code?: string }).code, 'smtp_421');
      assert.match(err.message, /421 4\.3\.2 Service not available/);
      await sender.deliver(delivery(), signal());
      assert.equal((await server.waitForMessages(1)).length, 1);
    } finally {
      await close();
    }
  });

  test('421 as the greeting is retryable, and the next connection succeeds', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server);
    try {
      server.failNextConnections(1);
      const err = await deliveryFailure(sender.deliver(delivery(), signal()));
      assert.ok(isRetryable(err), `${err.name}: ${err.message}`);
      assert.match(err.message, /421/);
      await sender.deliver(delivery(), signal());
      assert.equal((await server.waitForMessages(1)).length, 1);
    } finally {
      await close();
    }
  });

  test('550 for the recipient is permanent, with the server reply in the reason', async () => {
    server.reset();
    server.rejectRecipient('nobody@half-shot.uk');
    const { sender, close } = await openEmailSender(server);
    try {
      const err = await deliveryFailure(sender.deliver(delivery({ target: 'nobody@half-shot.uk' }), signal()));
      assert.ok(isPermanent(err), `${err.name}: ${err.message}`);
      assert.equal((err as { code?: string }).code, 'smtp_550');
      assert.match(err.message, /refused the recipient: 550 5\.1\.1 unknown user <nobody@half-shot\.uk>/);
      // The pooled connection stays usable for the next delivery.
      await sender.deliver(delivery(), signal());
      assert.deepEqual((await server.waitForMessages(1)).map((m) => m.envelope.to), [['will@half-shot.uk']]);
    } finally {
      await close();
    }
  });

  test('a wrong password is permanent (535) and the error never holds the password', async () => {
    server.reset();
    const password = 'Wr0ng-Secret-Pa55';
    const { sender, close } = await openEmailSender(server, { url: server.url({ password }) });
    try {
      const err = await deliveryFailure(sender.deliver(delivery(), signal()));
      assert.ok(isPermanent(err), `${err.name}: ${err.message}`);
      assert.equal((err as { code?: string }).code, 'smtp_535');
      assert.match(err.message, /refused the login/);
      const everything = [err.message, err.stack, JSON.stringify(err), String(err.cause)].join('\n');
      for (const secret of [password, Buffer.from(password).toString('base64'), Buffer.from(`\0hub\0${password}`).toString('base64')]) {
        assert.ok(!everything.includes(secret), `the error leaks ${secret}`);
      }
      assert.equal(server.messages.length, 0);
    } finally {
      await close();
    }
  });

  test('a refused connection is retryable', async () => {
    const port = await freePort();
    const { sender, close } = await openEmailSender(server, { url: `smtp://hub:${server.password}@127.0.0.1:${port}` });
    try {
      const err = await deliveryFailure(sender.deliver(delivery(), signal()));
      assert.ok(isRetryable(err), `${err.name}: ${err.message}`);
      assert.equal((err as { code?: string }).code, 'smtp_connection');
      assert.match(err.message, /ECONNREFUSED/);
      assert.ok(!err.message.includes(server.password));
    } finally {
      await close();
    }
  });

  test('a connection cut mid-session is retryable', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server);
    try {
      server.dropNextMessages(1);
      const err = await deliveryFailure(sender.deliver(delivery(), signal()));
      assert.ok(isRetryable(err), `${err.name}: ${err.message}`);
      await sender.deliver(delivery(), signal());
      assert.equal((await server.waitForMessages(1)).length, 1);
    } finally {
      await close();
    }
  });

  test('the certificate is verified by default: an untrusted server is not sent to', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server, { tlsCa: undefined });
    try {
      const err = await deliveryFailure(sender.deliver(delivery(), signal()));
      assert.ok(isRetryable(err), `${err.name}: ${err.message}`);
      assert.equal((err as { code?: string }).code, 'smtp_tls');
      assert.match(err.message, /certificate/i);
      assert.equal(server.messages.length, 0);
    } finally {
      await close();
    }
  });

  test('a server without STARTTLS: requireTls refuses to log in in clear; on loopback it is not required', async () => {
    const plain = await startSmtpServer({ starttls: false });
    const strict = await openEmailSender(plain, { requireTls: true });
    const loose = await openEmailSender(plain);
    try {
      const err = await deliveryFailure(strict.sender.deliver(delivery(), signal()));
      assert.ok(isPermanent(err), `${err.name}: ${err.message}`);
      assert.match(err.message, /refused STARTTLS \(it offers no TLS upgrade/);
      assert.equal(plain.messages.length, 0);

      await loose.sender.deliver(delivery(), signal());
      const [mail] = await plain.waitForMessages(1);
      assert.equal(mail?.secure, false);
    } finally {
      await strict.close();
      await loose.close();
      await plain.close();
    }
  });

  test('an aborted delivery is retryable', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server);
    try {
      const err = await deliveryFailure(sender.deliver(delivery(), AbortSignal.abort()));
      assert.ok(isRetryable(err), `${err.name}: ${err.message}`);
      assert.equal((err as { code?: string }).code, 'aborted');
    } finally {
      await close();
    }
  });

  test('a burst of 20 deliveries shares a few pooled connections', async () => {
    server.reset();
    const { sender, close } = await openEmailSender(server, { maxConnections: 3 });
    try {
      const deliveries = Array.from({ length: 20 }, (_, i) => delivery({ id: `burst-${i}`, target: `user${i}@half-shot.uk` }));
      await Promise.all(deliveries.map((d) => sender.deliver(d, signal())));
      const mails = await server.waitForMessages(20);
      assert.equal(mails.length, 20);
      assert.ok(server.connections <= 3, `${server.connections} connections for 20 messages`);
      assert.deepEqual(new Set(mails.map((m) => m.envelope.to[0])).size, 20);
    } finally {
      await close();
    }
  });

  test('smtps:// (TLS from the first byte) works too', async () => {
    const tlsServer = await startSmtpServer({ implicitTls: true });
    const { sender, close } = await openEmailSender(tlsServer, { tlsCa: tlsServer.ca });
    try {
      await sender.deliver(delivery(), signal());
      const [mail] = await tlsServer.waitForMessages(1);
      assert.equal(mail?.secure, true);
    } finally {
      await close();
      await tlsServer.close();
    }
  });
});

describe('email targets and settings', () => {
  test('validateTarget: the two written forms pass, anything else says why', () => {
    const table: Array<[string, RegExp | undefined]> = [
      ['will@half-shot.uk', undefined],
      ['On call <oncall@half-shot.uk>', undefined],
      ['"Doe, Jane" <jane@example.org>', undefined],
      ['<bare@example.org>', undefined],
      ['ünï@exämple.de', undefined],
      ['', /empty/],
      ['   ', /empty/],
      ['a@b.c, d@e.f', /holds 2 addresses/],
      ['team: a@b.c, d@e.f;', /group/],
      ['will@', /domain/],
      ['will@localhost', /domain/],
      ['will@-bad.example', /domain/],
      ['will@half..shot.uk', /domain/],
      ['@half-shot.uk', /user part/],
      ['will', /not an email address|has no @/],
      ['will at half-shot.uk', /not an email address/],
      ['a b@c.de', /not an email address/],
      ['Name <a@b.de> trailing', /not an email address/],
      ['Name <a@b.de', /not an email address/],
      ['Eve\r\n<eve@example.org>', /line break/],
      ['eve@example.org\nBcc: x@y.z', /line break/],
      ['tab\t<eve@example.org>', /control character/],
    ];
    for (const [target, expected] of table) {
      const reason = plugin.validateTarget(target);
      if (expected === undefined) assert.equal(reason, undefined, `${JSON.stringify(target)}: ${reason}`);
      else assert.match(reason ?? '(accepted)', expected, JSON.stringify(target));
    }
  });

  test('normalizeTarget: the same inbox through two groups is one target', () => {
    const normalize = plugin.normalizeTarget;
    assert.ok(normalize);
    assert.equal(normalize('Will@Half-Shot.UK'), 'will@half-shot.uk');
    assert.equal(normalize('On call <OnCall@half-shot.uk>'), 'oncall@half-shot.uk');
    assert.equal(normalize('oncall@half-shot.uk'), normalize('Pager <ONCALL@HALF-SHOT.UK>'));
  });

  test('composeMail folds control characters out of every header field', () => {
    const mail = composeMail(
      delivery({ id: 'id\r\nX-Evil: 1', subject: '\u0000Hi\u2028there\r\n' }),
      { name: 'Hub\r\nBcc: a@evil.example', address: 'hub@exämple.de' },
      { name: 'Will\nCc: b@evil.example', address: 'will@half-shot.uk' },
    );
    assert.equal(mail.subject, 'Hi there');
    assert.deepEqual(mail.from, { name: 'Hub Bcc: a@evil.example', address: 'hub@exämple.de' });
    assert.deepEqual(mail.to, { name: 'Will Cc: b@evil.example', address: 'will@half-shot.uk' });
    assert.deepEqual(mail.headers, { 'X-Notification-Hub-Delivery': 'id X-Evil: 1', 'Auto-Submitted': 'auto-generated' });
    assert.match(String(mail.messageId), /^<[0-9a-f]{40}@xn--exmple-cua\.de>$/);
    assert.equal(messageIdFor('a', { name: '', address: 'x@y.org' }), messageIdFor('a', { name: 'Other', address: 'x@y.org' }));
  });

  test('connection options come from the URL; TLS is required for a password sent off this host', () => {
    const options = (url: string, extra: Partial<EmailSettings> = {}) =>
      transportOptions(settingsSchema.parse({ url, from: 'hub@example.org', ...extra }));
    const remote = options('smtp://hub%40example.org:p%40ss@mail.example.org');
    assert.equal(remote.host, 'mail.example.org');
    assert.equal(remote.port, 587);
    assert.equal(remote.secure, false);
    assert.equal(remote.requireTLS, true);
    assert.deepEqual(remote.auth, { user: 'hub@example.org', pass: 'p@ss' });
    assert.equal(remote.pool, true);
    assert.equal(remote.maxConnections, 5);
    assert.equal(remote.tls?.rejectUnauthorized, true);
    assert.equal(remote.disableFileAccess, true);
    assert.equal(remote.disableUrlAccess, true);

    const implicit = options('smtps://u:p@[::1]');
    assert.deepEqual([implicit.host, implicit.port, implicit.secure, implicit.requireTLS], ['::1', 465, true, false]);
    assert.equal(options('smtp://relay.example.org:25').requireTLS, false, 'no password, nothing to protect');
    assert.equal(options('smtp://u:p@127.0.0.1:2525').requireTLS, false, 'loopback');
    assert.equal(options('smtp://u:p@mail.example.org', { requireTls: false }).requireTLS, false, 'explicitly off');
  });

  test('settings: the URL is secret, and a bad one is refused without echoing it', () => {
    assert.deepEqual(plugin.settings.secrets, ['url']);
    assert.deepEqual(plugin.settings.env, { url: 'SMTP_URL', from: 'EMAIL_FROM' });
    const ok = plugin.settings.schema.safeParse({ url: 'smtp://u:p@mail.example.org:587', from: 'hub@example.org' });
    assert.ok(ok.success);
    assert.equal(ok.data.tlsRejectUnauthorized, true, 'certificates are verified by default');
    assert.equal(ok.data.maxConnections, 5);

    const bad = plugin.settings.schema.safeParse({ url: 'http://user:S3cretValue@mail.example.org', from: 'not an address' });
    assert.ok(!bad.success);
    const text = JSON.stringify(bad.error.issues.map(({ path, message }) => ({ path, message })));
    assert.match(text, /smtp:\/\//);
    assert.match(text, /"from"/);
    assert.ok(!text.includes('S3cretValue'));
  });
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  assert.ok(address && typeof address === 'object');
  return address.port;
}
