/**
 * A real HTTP receiver for webhook tests on 127.0.0.1, a port of its own: it
 * records every request (raw body included, to check signatures against)
 * and answers 200 unless told to answer otherwise.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';

export interface ReceivedRequest {
  method: string;
  /** Path and query. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The body exactly as received. */
  raw: string;
  /** The body parsed as JSON (`undefined` when it is not JSON). */
  json: unknown;
  /** When it arrived (`performance.now()`), to measure the gaps between retries. */
  at: number;
}

/** An answer to give instead of 200: `{ status: 429, headers: { 'retry-after': '30' } }`. */
export interface WebhookReply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Wait this long before answering. */
  delayMs?: number;
}

export interface TestWebhookServer {
  /** `http://127.0.0.1:<port><path>`. */
  url(path?: string): string;
  /** Every request so far, in order (also those answered with a fault). */
  readonly requests: ReceivedRequest[];
  /** Answer the next requests with these replies, one each, then 200 again. */
  replyNext(...replies: WebhookReply[]): void;
  reset(): void;
  close(): Promise<void>;
}

/** What a receiver does: recompute the HMAC of the raw body and compare in constant time. */
export function verifySignature(raw: string, header: string | string[] | undefined, secret: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`);
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startWebhookServer(): Promise<TestWebhookServer> {
  const requests: ReceivedRequest[] = [];
  const replies: WebhookReply[] = [];

  const server = createServer((req, res) => {
    const at = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        json = undefined;
      }
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw, json, at });
      const reply = replies.shift() ?? { status: 200, body: '{"ok":true}', headers: { 'content-type': 'application/json' } };
      const answer = () => {
        if (res.destroyed) return;
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body ?? '');
      };
      if (reply.delayMs) setTimeout(answer, reply.delayMs).unref();
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('webhook test server has no TCP port');

  return {
    url: (path = '/hook') => `http://127.0.0.1:${address.port}${path}`,
    requests,
    replyNext: (...next) => void replies.push(...next),
    reset() {
      requests.length = 0;
      replies.length = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
