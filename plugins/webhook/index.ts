/**
 * The webhook channel: each delivery is POSTed as JSON to an http(s) URL.
 * The smallest complete plugin, and the one to copy when writing a new one:
 * settings, target validation and one `deliver` that turns every outcome
 * into a receipt, a RetryableError or a PermanentError.
 */
import { createHmac } from 'node:crypto';
import { PLUGIN_API_VERSION, callSignal, definePlugin, renderBody, renderOnce, sanitizeHtml, z } from 'notification-hub/plugin-api';
import { checkResponse, requestError } from './classify-error.ts';

const settings = z.object({
  /** HMAC-SHA256 key. When set, each request carries `X-Hub-Signature-256: sha256=<hex of the raw body>`. */
  secret: z.string().min(1).optional(),
  /** How long one request may take before it is given up (and retried later). */
  timeoutMs: z.number().int().positive().default(10_000),
});

function validateTarget(target: string): string | undefined {
  if (!URL.canParse(target)) return 'not a URL: write https://example.org/hooks/alerts';
  const url = new URL(target);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `not an http(s) URL (${url.protocol})`;
  if (url.username || url.password) return 'holds a user name or password, which would show in logs: sign with WEBHOOK_SECRET instead';
  return undefined;
}

export default definePlugin({
  name: 'webhook',
  apiVersion: PLUGIN_API_VERSION,
  description: 'POST each notification as JSON to an http(s) URL, signed with WEBHOOK_SECRET when set',
  settings: { schema: settings, env: { secret: 'WEBHOOK_SECRET' }, secrets: ['secret'] },
  validateTarget,
  // `HTTPS://Example.org:443/hook` and `https://example.org/hook` are one receiver.
  normalizeTarget: (target) => (URL.canParse(target) ? new URL(target).href : target),

  createSender: ({ settings }) => {
    // `body` is the producer's own, as sent; `html` (the Matrix subset) and `text` are safe to show.
    const render = renderOnce(({ body, format }) => {
      const { html, text } = renderBody(body, format);
      return { html: sanitizeHtml(html), text };
    });
    return {
      async deliver(delivery, signal) {
        const { id, messageId, channel, target, message } = delivery;
        const { to, subject, body, format } = message;
        const { html, text } = render(message);
        const payload = JSON.stringify({ id, messageId, channel, target, to, subject, body, format, html, text });
        const headers: Record<string, string> = {
          'Content-Type': 'application/json',
          'User-Agent': 'notification-hub',
          // Stable across retries: the receiver drops a delivery it has already seen.
          'X-Hub-Delivery': id,
        };
        if (settings.secret) {
          headers['X-Hub-Signature-256'] = `sha256=${createHmac('sha256', settings.secret).update(payload).digest('hex')}`;
        }
        // The timeout covers the answer's body too (an error's excerpt is read from it).
        const call = callSignal([signal], { ms: settings.timeoutMs, reason: () => new DOMException('the webhook did not answer in time', 'TimeoutError') });
        try {
          let response: Response;
          try {
            response = await fetch(target, {
              method: 'POST',
              headers,
              body: payload,
              // A POST that is redirected turns into a GET elsewhere: refuse it and say where to point instead.
              redirect: 'manual',
              signal: call.signal,
            });
          } catch (err) {
            throw requestError(err, { timeoutMs: settings.timeoutMs, aborted: signal.aborted });
          }
          await checkResponse(response);
          return { details: { status: String(response.status) } };
        } finally {
          call.release();
        }
      },
    };
  },
});
