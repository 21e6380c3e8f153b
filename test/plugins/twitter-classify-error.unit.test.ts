import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { ApiPartialResponseError, ApiRequestError, ApiResponseError } from 'twitter-api-v2';
import { PermanentError, isPermanent, isRetryable } from '../../core/plugin-api.ts';
import { classifyTwitterError } from '../../plugins/twitter/classify-error.ts';

const NOW = 1_800_000_000_000;
/** What twitter-api-v2 keeps on its errors: the request, with the signed OAuth header. */
const AUTHORIZATION = 'OAuth oauth_consumer_key="consumerKEY123",oauth_token="999-accessTOKEN",oauth_signature="c2lnbmF0dXJl"';
const request = { getHeader: () => AUTHORIZATION, headers: { authorization: AUTHORIZATION } } as unknown as ClientRequest;

function response(code: number, data: object | undefined, rateLimit?: { limit: number; remaining: number; reset: number }): ApiResponseError {
  return new ApiResponseError(`Request failed with code ${code}`, {
    code, data: data as never, headers: {}, request, response: {} as IncomingMessage, rateLimit,
  });
}
const blank = (status: number, title: string, detail: string) => ({ type: 'about:blank', title, detail, status });

type Expected = { kind: 'permanent' | 'retryable'; code: string; message?: RegExp; rateLimited?: boolean; retryAfterMs?: number };

const table: Array<[string, unknown, string, Expected]> = [
  ['429 until x-rate-limit-reset', response(429, blank(429, 'Too Many Requests', 'Too Many Requests'), { limit: 300, remaining: 0, reset: NOW / 1000 + 90 }), 'post',
    { kind: 'retryable', code: 'rate_limited', rateLimited: true, retryAfterMs: 90_000, message: /window reopens at / }],
  ['429 without a reset', response(429, { errors: [{ code: 88, message: 'Rate limit exceeded' }] }), 'post',
    { kind: 'retryable', code: 'rate_limited', rateLimited: true, retryAfterMs: undefined }],
  ['429 with a reset already past', response(429, {}, { limit: 1, remaining: 0, reset: NOW / 1000 - 5 }), 'post',
    { kind: 'retryable', code: 'rate_limited', rateLimited: true, retryAfterMs: 0 }],
  ['duplicate content', response(403, blank(403, 'Forbidden', 'You are not allowed to create a Tweet with duplicate content.')), 'post',
    { kind: 'permanent', code: 'duplicate', message: /^X answered 403 \(Forbidden: You are not allowed to create a Tweet with duplicate content\.\): the same text was posted before$/ }],
  ['401', response(401, blank(401, 'Unauthorized', 'Unauthorized')), 'post',
    { kind: 'permanent', code: 'unauthorized', message: /credentials were refused; check TWITTER_APP_KEY, TWITTER_APP_SECRET, TWITTER_ACCESS_TOKEN and TWITTER_ACCESS_SECRET/ }],
  ['403 DMs not allowed', response(403, blank(403, 'Forbidden', 'You cannot send messages to this user.')), '@closed',
    { kind: 'permanent', code: 'forbidden', message: /You cannot send messages to this user\.\): @closed may not accept direct messages/ }],
  ['400 invalid request', response(400, { type: 'https://api.x.com/2/problems/invalid-request', title: 'Invalid Request', detail: 'One or more parameters to your request was invalid.', errors: [{ message: 'text: too long' }] }), 'post',
    { kind: 'permanent', code: 'invalid_request', message: /Invalid Request: One or more parameters to your request was invalid\.: text: too long/ }],
  ['404 user not found', response(404, { type: 'https://api.x.com/2/problems/resource-not-found', title: 'Not Found Error', detail: 'Could not find user with participant_id: [5].', resource_type: 'user' }), '5',
    { kind: 'permanent', code: 'not_found', message: /Could not find user/ }],
  ['500', response(500, { type: 'https://api.x.com/2/problems/internal-error', title: 'Internal Error', detail: 'An internal error occurred.' }), 'post',
    { kind: 'retryable', code: 'x_500' }],
  ['503 without a body', response(503, undefined), 'post', { kind: 'retryable', code: 'x_503', message: /^X answered 503 for post$/ }],
  ['a network error', new ApiRequestError('Request failed.', { request, error: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) } as never), 'post',
    { kind: 'retryable', code: 'network', message: /ECONNREFUSED/ }],
  ['a cut response', new ApiPartialResponseError('partial', { request, response: {} as IncomingMessage, responseError: new Error('aborted'), rawContent: '{' }), 'post',
    { kind: 'retryable', code: 'partial_response' }],
  ['anything else', new TypeError('boom'), 'post', { kind: 'retryable', code: 'unknown', message: /boom/ }],
];

for (const [name, input, target, expected] of table) {
  test(`classify: ${name}`, () => {
    const err = classifyTwitterError(input, target, NOW);
    assert.ok(expected.kind === 'permanent' ? isPermanent(err) : isRetryable(err), err.message);
    assert.equal(err.code, expected.code);
    if (expected.message) assert.match(err.message, expected.message);
    if (isRetryable(err)) {
      assert.equal(err.rateLimited, expected.rateLimited ?? false);
      assert.equal(err.retryAfterMs, expected.retryAfterMs);
    }
    const printed = inspect(err, { depth: Infinity, showHidden: true });
    for (const secret of ['consumerKEY123', 'accessTOKEN', 'oauth_signature']) assert.ok(!printed.includes(secret));
  });
}

test('classify: the hub\'s own errors pass through', () => {
  const own = new PermanentError('X has no user @x', { code: 'user_not_found' });
  assert.equal(classifyTwitterError(own, '@x'), own);
});
