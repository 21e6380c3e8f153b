import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { ConnectionError, HTTPError, MatrixError } from 'matrix-js-sdk';
import { PermanentError, RetryableError, isPermanent, isRetryable } from '../../core/plugin-api.ts';
import { Redactor } from '../../core/redactor.ts';
import { classifyError } from '../../plugins/matrix/classify-error.ts';

const URL = 'https://hs.example/_matrix/client/v3/rooms/!r%3Ahs.example/send/m.room.message/t1';
const matrix = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  new MatrixError(body, status, URL, undefined, new Headers(headers));
const abort = () => Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });

const table: Array<[string, unknown, 'permanent' | 'retryable', string, { rateLimited?: boolean; retryAfterMs?: number }?]> = [
  ['M_LIMIT_EXCEEDED, retry_after_ms', matrix(429, { errcode: 'M_LIMIT_EXCEEDED', error: 'slow', retry_after_ms: 1234 }), 'retryable', 'M_LIMIT_EXCEEDED', { rateLimited: true, retryAfterMs: 1234 }],
  ['M_LIMIT_EXCEEDED, Retry-After seconds', matrix(429, { errcode: 'M_LIMIT_EXCEEDED', error: 'slow' }, { 'Retry-After': '7' }), 'retryable', 'M_LIMIT_EXCEEDED', { rateLimited: true, retryAfterMs: 7000 }],
  ['M_LIMIT_EXCEEDED, both: the longer', matrix(429, { errcode: 'M_LIMIT_EXCEEDED', error: 's', retry_after_ms: 2500 }, { 'Retry-After': '2' }), 'retryable', 'M_LIMIT_EXCEEDED', { rateLimited: true, retryAfterMs: 2500 }],
  ['429 with no wait', matrix(429, { errcode: 'M_LIMIT_EXCEEDED', error: 'slow' }), 'retryable', 'M_LIMIT_EXCEEDED', { rateLimited: true, retryAfterMs: undefined }],
  ['429 from a proxy, not JSON', new HTTPError('Server returned 429 error', 429, new Headers({ 'Retry-After': '3' })), 'retryable', 'M_LIMIT_EXCEEDED', { rateLimited: true, retryAfterMs: 3000 }],
  ['M_FORBIDDEN', matrix(403, { errcode: 'M_FORBIDDEN', error: 'You are not allowed to send here' }), 'permanent', 'M_FORBIDDEN'],
  ['M_NOT_FOUND', matrix(404, { errcode: 'M_NOT_FOUND', error: 'Unknown room' }), 'permanent', 'M_NOT_FOUND'],
  ['M_UNKNOWN_TOKEN', matrix(401, { errcode: 'M_UNKNOWN_TOKEN', error: 'Unrecognised access token' }), 'permanent', 'M_UNKNOWN_TOKEN'],
  ['M_MISSING_TOKEN', matrix(401, { errcode: 'M_MISSING_TOKEN', error: 'Missing access token' }), 'permanent', 'M_MISSING_TOKEN'],
  ['M_BAD_JSON', matrix(400, { errcode: 'M_BAD_JSON', error: 'bad' }), 'permanent', 'M_BAD_JSON'],
  ['M_NOT_JSON', matrix(400, { errcode: 'M_NOT_JSON', error: 'not json' }), 'permanent', 'M_NOT_JSON'],
  ['M_TOO_LARGE', matrix(413, { errcode: 'M_TOO_LARGE', error: 'Event too large' }), 'permanent', 'M_TOO_LARGE'],
  ['another 4xx errcode', matrix(400, { errcode: 'M_UNKNOWN', error: 'odd' }), 'permanent', 'M_UNKNOWN'],
  ['a 4xx without errcode', new HTTPError('Server returned 410 error', 410), 'permanent', 'http_410'],
  ['M_RESOURCE_LIMIT_EXCEEDED waits for the operator', matrix(403, { errcode: 'M_RESOURCE_LIMIT_EXCEEDED', error: 'MAU', admin_contact: 'mailto:a@b' }), 'retryable', 'M_RESOURCE_LIMIT_EXCEEDED'],
  ['500', matrix(500, { errcode: 'M_UNKNOWN', error: 'Internal server error' }), 'retryable', 'M_UNKNOWN'],
  ['502 from a proxy, HTML', new HTTPError('Server returned 502 error', 502), 'retryable', 'http_502'],
  ['408', new HTTPError('Server returned 408 error', 408), 'retryable', 'http_408'],
  ['network', new ConnectionError('fetch failed', new Error('connect ECONNREFUSED 127.0.0.1:8008')), 'retryable', 'network'],
  ['abort / timeout', abort(), 'retryable', 'timeout'],
  ['something else', new TypeError('x is not a function'), 'retryable', 'unknown'],
];

for (const [name, err, kind, code, extra = {}] of table) {
  test(`classify: ${name} → ${kind} ${code}`, () => {
    const result = classifyError(err, 'sending to !r:hs.example');
    assert.ok(kind === 'permanent' ? isPermanent(result) : isRetryable(result), `${result.name}: ${result.message}`);
    assert.equal(result.code, code);
    assert.ok(result.message.startsWith('sending to !r:hs.example: '), result.message);
    for (const [key, value] of Object.entries(extra)) assert.equal((result as RetryableError)[key as keyof RetryableError], value, key);
    if (kind === 'permanent' || code !== 'M_LIMIT_EXCEEDED') assert.equal((result as RetryableError).rateLimited ?? false, false);
  });
}

test("classify: the server's message is in the reason", () => {
  const result = classifyError(matrix(403, { errcode: 'M_FORBIDDEN', error: 'You are not allowed to send here' }), 'sending to !r:x');
  assert.equal(result.message, 'sending to !r:x: the homeserver answered 403 M_FORBIDDEN: You are not allowed to send here');
  const token = classifyError(matrix(401, { errcode: 'M_UNKNOWN_TOKEN', error: 'Unrecognised access token' }), 'sending to !r:x');
  assert.match(token.message, /does not recognise the bot's access token: check MATRIX_ACCESS_TOKEN/);
});

test('classify: the access token never appears, even when the peer echoes it or the URL carries it', () => {
  const secret = 'mat_c2VjcmV0_abcdefghijklmnop';
  const redactor = new Redactor();
  redactor.add(secret);
  const echoed = matrix(401, { errcode: 'M_UNKNOWN_TOKEN', error: `Unknown token ${secret}` });
  const inUrl = new MatrixError({ errcode: 'M_FORBIDDEN', error: 'no' }, 403, `${URL}?access_token=${secret}`);
  const inNetwork = new ConnectionError('fetch failed', new Error(`request to https://hs/?access_token=${secret} failed`));
  for (const err of [echoed, inUrl, inNetwork]) {
    const result = classifyError(err, 'sending to !r:x', redactor);
    const shown = inspect(result, { depth: 10 });
    assert.ok(!shown.includes(secret), shown);
  }
  assert.match(classifyError(echoed, 'x', redactor).message, /Unknown token \[redacted\]/);
});

test('classify: taxonomy errors pass through untouched', () => {
  const permanent = new PermanentError('already decided', { code: 'encrypted_room' });
  const retryable = new RetryableError('later', { code: 'dm_lock' });
  assert.equal(classifyError(permanent, 'x'), permanent);
  assert.equal(classifyError(retryable, 'x'), retryable);
});

test('classify: an HTTP-date Retry-After', () => {
  const when = new Date(Date.now() + 30_000).toUTCString();
  const result = classifyError(matrix(429, { errcode: 'M_LIMIT_EXCEEDED', error: 'slow' }, { 'Retry-After': when }), 'x') as RetryableError;
  assert.ok(result.retryAfterMs !== undefined && result.retryAfterMs > 28_000 && result.retryAfterMs <= 30_000, String(result.retryAfterMs));
});
