import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { isPermanent, isRetryable, type Delivery, type RetryableError } from '../../core/plugin-api.ts';
import plugin from '../../plugins/webhook/index.ts';
import { startWebhookServer, verifySignature, type TestWebhookServer } from '../servers/webhook.ts';
import { deliveryFailure, openSender } from '../support/plugin-context.ts';

const SECRET = 'webhook-test-secret';

function delivery(target: string, overrides: Partial<Delivery> = {}): Delivery {
  return {
    id: '1700000000000-0:webhook:0',
    messageId: '1700000000000-0',
    channel: 'webhook',
    target,
    attempt: 1,
    message: {
      to: ['#admins', '#oncall'],
      subject: 'Orders API failing',
      body: '<p><b>/api/orders</b> failed 12 times in 5 min</p>',
      format: 'html',
    },
    ...overrides,
  };
}

const openWebhookSender = (settings: { secret?: string; timeoutMs?: number } = {}) => openSender(plugin, { timeoutMs: 10_000, ...settings });

const signal = () => AbortSignal.timeout(20_000);

describe('webhook plugin against a real HTTP receiver', () => {
  let server: TestWebhookServer;
  before(async () => {
    server = await startWebhookServer();
  });
  after(async () => {
    await server.close();
  });

  test('POSTs the delivery as JSON, signed with the secret, with the delivery id for dedupe', async () => {
    server.reset();
    const { sender, close } = await openWebhookSender({ secret: SECRET });
    try {
      const target = server.url('/hooks/alerts');
      const receipt = await sender.deliver(delivery(target), signal());
      assert.deepEqual(receipt, { details: { status: '200' } });
      assert.equal(server.requests.length, 1);
      const [request] = server.requests;
      assert.ok(request);
      assert.equal(request.method, 'POST');
      assert.equal(request.path, '/hooks/alerts');
      assert.equal(request.headers['content-type'], 'application/json');
      assert.equal(request.headers['x-hub-delivery'], '1700000000000-0:webhook:0');
      assert.ok(verifySignature(request.raw, request.headers['x-hub-signature-256'], SECRET), 'signature of the raw body');
      assert.ok(!verifySignature(request.raw, request.headers['x-hub-signature-256'], 'another-secret'));
      assert.deepEqual(request.json, {
        id: '1700000000000-0:webhook:0',
        messageId: '1700000000000-0',
        channel: 'webhook',
        target,
        to: ['#admins', '#oncall'],
        subject: 'Orders API failing',
        body: '<p><b>/api/orders</b> failed 12 times in 5 min</p>',
        format: 'html',
        html: '<p><b>/api/orders</b> failed 12 times in 5 min</p>',
        text: '/api/orders failed 12 times in 5 min',
      });
    } finally {
      await close();
    }
  });

  test('`body` is the producer’s own HTML as sent; `html` and `text` beside it are sanitized', async () => {
    server.reset();
    const { sender, close } = await openWebhookSender();
    try {
      const body = '<p onclick="steal()">pay <a href="https://evil.example/">https://bank.example/\u202Eexe.txt</a><script>alert(1)</script>'
        + '<font color="expression(alert(1))">!</font></p>';
      await sender.deliver(delivery(server.url(), { message: { to: ['#admins'], body, format: 'html' } }), signal());
      const json = server.requests[0]?.json as { body: string; html: string; text: string };
      assert.equal(json.body, body, 'kept as sent, for receivers written against it');
      assert.equal(json.html, '<p>pay <a href="https://evil.example/">https://bank.example/exe.txt</a><font>!</font></p>');
      assert.equal(json.text, 'pay https://bank.example/exe.txt [https://evil.example/]!');
    } finally {
      await close();
    }
  });

  test('without a secret the request is not signed', async () => {
    server.reset();
    const { sender, close } = await openWebhookSender();
    try {
      await sender.deliver(delivery(server.url()), signal());
      assert.equal(server.requests[0]?.headers['x-hub-signature-256'], undefined);
    } finally {
      await close();
    }
  });

  test('500 is retryable, with the start of the answer in the reason', async () => {
    server.reset();
    server.replyNext({ status: 500, body: '<html><body><h1>Internal error</h1><p>database is down</p></body></html>' });
    const { sender, close } = await openWebhookSender();
    try {
      const err = await deliveryFailure(sender.deliver(delivery(server.url()), signal()));
      assert.ok(isRetryable(err), err.message);
      assert.equal(err.code, 'http_500');
      assert.match(err.message, /500: Internal error database is down/);
      assert.equal((err as RetryableError).rateLimited, false);
    } finally {
      await close();
    }
  });

  test('503 with Retry-After is retryable after that wait, and counts as an attempt', async () => {
    server.reset();
    server.replyNext({ status: 503, headers: { 'retry-after': '7' } });
    const { sender, close } = await openWebhookSender();
    try {
      const err = (await deliveryFailure(sender.deliver(delivery(server.url()), signal()))) as RetryableError;
      assert.ok(isRetryable(err));
      assert.equal(err.retryAfterMs, 7_000);
      assert.equal(err.rateLimited, false);
    } finally {
      await close();
    }
  });

  test('429 with Retry-After (seconds or a date) is rate-limited with the server’s wait', async () => {
    server.reset();
    server.replyNext(
      { status: 429, headers: { 'retry-after': '30' }, body: 'slow down' },
      { status: 429, headers: { 'retry-after': new Date(Date.now() + 120_000).toUTCString() } },
    );
    const { sender, close } = await openWebhookSender();
    try {
      const seconds = (await deliveryFailure(sender.deliver(delivery(server.url()), signal()))) as RetryableError;
      assert.ok(isRetryable(seconds));
      assert.equal(seconds.code, 'http_429');
      assert.equal(seconds.rateLimited, true);
      assert.equal(seconds.retryAfterMs, 30_000);
      assert.match(seconds.message, /slow down/);

      const date = (await deliveryFailure(sender.deliver(delivery(server.url()), signal()))) as RetryableError;
      assert.equal(date.rateLimited, true);
      assert.ok(date.retryAfterMs !== undefined && date.retryAfterMs > 110_000 && date.retryAfterMs <= 120_000, String(date.retryAfterMs));
    } finally {
      await close();
    }
  });

  test('408 is retryable', async () => {
    server.reset();
    server.replyNext({ status: 408 });
    const { sender, close } = await openWebhookSender();
    try {
      const err = await deliveryFailure(sender.deliver(delivery(server.url()), signal()));
      assert.ok(isRetryable(err));
      assert.equal(err.code, 'http_408');
    } finally {
      await close();
    }
  });

  test('404 and other 4xx are permanent, with the status and the answer', async () => {
    server.reset();
    server.replyNext({ status: 404, body: 'no such hook' }, { status: 401, body: '{"error":"bad signature"}' });
    const { sender, close } = await openWebhookSender();
    try {
      const notFound = await deliveryFailure(sender.deliver(delivery(server.url()), signal()));
      assert.ok(isPermanent(notFound), notFound.message);
      assert.equal(notFound.code, 'http_404');
      assert.equal(notFound.message, 'the webhook answered 404: no such hook');

      const unauthorized = await deliveryFailure(sender.deliver(delivery(server.url()), signal()));
      assert.ok(isPermanent(unauthorized));
      assert.match(unauthorized.message, /401: \{"error":"bad signature"\}/);
    } finally {
      await close();
    }
  });

  test('a redirect is not followed: permanent, naming where to point instead', async () => {
    server.reset();
    server.replyNext({ status: 301, headers: { location: 'https://new.example.org/hook' } });
    const { sender, close } = await openWebhookSender();
    try {
      const err = await deliveryFailure(sender.deliver(delivery(server.url()), signal()));
      assert.ok(isPermanent(err), err.message);
      assert.match(err.message, /redirects \(301\) to https:\/\/new\.example\.org\/hook/);
      assert.equal(server.requests.length, 1);
    } finally {
      await close();
    }
  });

  test('a receiver that does not answer in time is retryable', async () => {
    server.reset();
    server.replyNext({ status: 200, delayMs: 2_000 });
    const { sender, close } = await openWebhookSender({ timeoutMs: 200 });
    try {
      const err = await deliveryFailure(sender.deliver(delivery(server.url()), signal()));
      assert.ok(isRetryable(err), err.message);
      assert.equal(err.code, 'timeout');
    } finally {
      await close();
    }
  });

  test('a delivery aborted by the runtime is retryable', async () => {
    server.reset();
    server.replyNext({ status: 200, delayMs: 2_000 });
    const { sender, close } = await openWebhookSender();
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const err = await deliveryFailure(sender.deliver(delivery(server.url()), controller.signal));
      assert.ok(isRetryable(err), err.message);
      assert.equal(err.code, 'aborted');
    } finally {
      await close();
    }
  });

  test('a refused connection is retryable', async () => {
    const { sender, close } = await openWebhookSender();
    try {
      const err = await deliveryFailure(sender.deliver(delivery(`http://127.0.0.1:${await freePort()}/hook`), signal()));
      assert.ok(isRetryable(err), err.message);
      assert.equal(err.code, 'network');
      assert.match(err.message, /ECONNREFUSED/);
    } finally {
      await close();
    }
  });
});

describe('webhook targets and settings', () => {
  test('validateTarget', () => {
    const table: Array<[string, RegExp | undefined]> = [
      ['https://hooks.example.org/alerts', undefined],
      ['http://127.0.0.1:8080/hook?team=ops', undefined],
      ['hooks.example.org/alerts', /not a URL/],
      ['', /not a URL/],
      ['ftp://example.org/hook', /not an http\(s\) URL/],
      ['javascript:alert(1)', /not an http\(s\) URL/],
      ['https://user:pass@example.org/hook', /user name or password/],
    ];
    for (const [target, expected] of table) {
      const reason = plugin.validateTarget(target);
      if (expected === undefined) assert.equal(reason, undefined, `${target}: ${reason}`);
      else assert.match(reason ?? '(accepted)', expected, target);
    }
  });

  test('normalizeTarget: one receiver written two ways is one target', () => {
    assert.equal(plugin.normalizeTarget?.('HTTPS://Hooks.Example.org:443/alerts'), 'https://hooks.example.org/alerts');
  });

  test('settings: the secret comes from WEBHOOK_SECRET and is optional; timeout defaults to 10 s', () => {
    assert.deepEqual(plugin.settings.env, { secret: 'WEBHOOK_SECRET' });
    assert.deepEqual(plugin.settings.secrets, ['secret']);
    assert.deepEqual(plugin.settings.schema.parse({}), { timeoutMs: 10_000 });
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
