import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebAPIRequestError,
} from '@slack/web-api';
import { PermanentError, isPermanent, isRetryable } from '../../core/plugin-api.ts';
import { classifySlackError } from '../../plugins/slack/classify-error.ts';

const platform = (error: string) => new WebAPIPlatformError({ ok: false, error });

type Expected =
  | { kind: 'permanent'; code: string; message: RegExp }
  | { kind: 'retryable'; code: string; rateLimited?: boolean; retryAfterMs?: number; message?: RegExp };

const table: Array<[string, unknown, Expected]> = [
  ['rate limited by the SDK', new WebAPIRateLimitedError(12), { kind: 'retryable', code: 'ratelimited', rateLimited: true, retryAfterMs: 12_000, message: /retry after 12 s/ }],
  ['429 without the SDK noticing', new WebAPIHTTPError(429, 'Too Many Requests', { 'retry-after': '5' }), { kind: 'retryable', code: 'ratelimited', rateLimited: true, retryAfterMs: 5000 }],
  ['ratelimited in a 200 body', platform('ratelimited'), { kind: 'retryable', code: 'ratelimited', rateLimited: true }],
  ['channel_not_found', platform('channel_not_found'), { kind: 'permanent', code: 'channel_not_found', message: /^Slack says channel_not_found: the channel #ops does not exist or the bot cannot see it$/ }],
  ['not_in_channel', platform('not_in_channel'), { kind: 'permanent', code: 'not_in_channel', message: /not a member of #ops/ }],
  ['invalid_auth', platform('invalid_auth'), { kind: 'permanent', code: 'invalid_auth', message: /check SLACK_TOKEN/ }],
  ['account_inactive', platform('account_inactive'), { kind: 'permanent', code: 'account_inactive', message: /deactivated/ }],
  ['token_revoked', platform('token_revoked'), { kind: 'permanent', code: 'token_revoked', message: /revoked/ }],
  ['is_archived', platform('is_archived'), { kind: 'permanent', code: 'is_archived', message: /#ops is archived/ }],
  ['msg_too_long', platform('msg_too_long'), { kind: 'permanent', code: 'msg_too_long', message: /too long/ }],
  ['no_text', platform('no_text'), { kind: 'permanent', code: 'no_text', message: /no text/ }],
  ['restricted_action', platform('restricted_action'), { kind: 'permanent', code: 'restricted_action', message: /prevents the bot from posting in #ops/ }],
  ['not_authed', platform('not_authed'), { kind: 'permanent', code: 'not_authed', message: /set SLACK_TOKEN/ }],
  ['missing_scope', platform('missing_scope'), { kind: 'permanent', code: 'missing_scope', message: /chat:write/ }],
  ['internal_error', platform('internal_error'), { kind: 'retryable', code: 'internal_error', message: /Slack's side/ }],
  ['fatal_error', platform('fatal_error'), { kind: 'retryable', code: 'fatal_error' }],
  ['service_unavailable', platform('service_unavailable'), { kind: 'retryable', code: 'service_unavailable' }],
  ['an error this plugin does not know', platform('brand_new_error'), { kind: 'retryable', code: 'brand_new_error', message: /not known/ }],
  ['HTTP 500', new WebAPIHTTPError(500, 'Internal Server Error', {}), { kind: 'retryable', code: 'http_500' }],
  ['HTTP 502', new WebAPIHTTPError(502, 'Bad Gateway', {}, '<html>'), { kind: 'retryable', code: 'http_502' }],
  ['a request error', new WebAPIRequestError(new Error('connect ECONNREFUSED 127.0.0.1:443')), { kind: 'retryable', code: 'request_error', message: /ECONNREFUSED/ }],
  ['anything else', new TypeError('boom'), { kind: 'retryable', code: 'unknown', message: /boom/ }],
];

for (const [name, input, expected] of table) {
  test(`classify: ${name}`, () => {
    const err = classifySlackError(input, '#ops');
    if (expected.kind === 'permanent') {
      assert.ok(isPermanent(err), err.message);
      assert.equal(err.code, expected.code);
      assert.match(err.message, expected.message);
    } else {
      assert.ok(isRetryable(err), err.message);
      assert.equal(err.code, expected.code);
      assert.equal(err.rateLimited, expected.rateLimited ?? false);
      assert.equal(err.retryAfterMs, expected.retryAfterMs);
      if (expected.message) assert.match(err.message, expected.message);
    }
  });
}

test('classify: the hub\'s own errors pass through', () => {
  const own = new PermanentError('already classified', { code: 'x' });
  assert.equal(classifySlackError(own, '#ops'), own);
});
