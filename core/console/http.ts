/** Small HTTP pieces of the console: JSON in and out, every answer through the redactor. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../http/read-body.ts';
import type { Redactor } from '../redactor.ts';

/** A mapping document is the largest thing the page sends. */
const MAX_BODY_BYTES = 1024 * 1024;

export class ClientError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export function sendJson(res: ServerResponse, redactor: Redactor, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = redactor.redact(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS, ...headers });
  res.end(text);
}

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new ClientError(415, 'send JSON (Content-Type: application/json)');
  const raw = await readBody(req, MAX_BODY_BYTES);
  if (raw === 'too large') throw new ClientError(413, `the request is over ${MAX_BODY_BYTES / 1024} KiB`);
  if (raw === 'aborted') throw new ClientError(400, 'the request body did not arrive whole');
  try {
    const body = JSON.parse(raw.toString('utf8')) as unknown;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
    return body as Record<string, unknown>;
  } catch {
    throw new ClientError(400, 'the request body is not a JSON object');
  }
}

/** Whether a request's Origin (when the browser sends one) is this server's own. */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const host = req.headers.host;
  if (!host) return false;
  return origin === `http://${host}` || origin === `https://${host}`;
}
