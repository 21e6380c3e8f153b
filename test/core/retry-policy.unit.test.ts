/**
 * The one retry policy, on its own: backoff and its jitter range, the cap,
 * the peer's wait, the floor of a rate-limited retry and its backoff while
 * the peer keeps answering 429, and the one `Retry-After` parser plugins get
 * through the plugin API. Each random range is sampled many times: its
 * bounds are what must hold for every draw.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PermanentError, RetryableError, UNFORMATTABLE, retryAfterMs } from '../../core/plugin-api.ts';
import { PEER_WAIT_CAP_MS, type Failure, type RetryPolicy, type Tries, afterFailure, classifyFailure, deadLetterReason, retryDelay } from '../../core/runtime/retry-policy.ts';

const policy: RetryPolicy = { maxAttempts: 8, baseMs: 1000, maxMs: 300_000, rateLimitFloorMs: 1000 };

const failed = (overrides: Partial<Failure> = {}): Failure => ({
  permanent: false, rateLimited: false, retryAfterMs: undefined, code: 'http_500', message: 'the webhook answered 500', ...overrides,
});
const limited = (retryAfter?: number): Failure => failed({ rateLimited: true, retryAfterMs: retryAfter, code: 'http_429' });

/** Every delay `draw` gives over many draws: [smallest, largest]. */
function range(draw: () => number, draws = 2000): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < draws; i++) {
    const d = draw();
    lo = Math.min(lo, d);
    hi = Math.max(hi, d);
  }
  return [lo, hi];
}

describe('retry policy: backoff of counted attempts', () => {
  test('exponential, jittered between half and all of the ceiling', () => {
    for (const [attempt, ceiling] of [[1, 1000], [2, 2000], [3, 4000], [5, 16_000]] as const) {
      const [lo, hi] = range(() => retryDelay(policy, failed(), { counted: attempt, rateLimitedInARow: 0 }));
      assert.ok(lo >= ceiling / 2 && hi <= ceiling, `attempt ${attempt}: ${lo}–${hi} outside ${ceiling / 2}–${ceiling}`);
      // The jitter really spreads: draws cover most of the range.
      assert.ok(hi - lo > ceiling / 2 * 0.8, `attempt ${attempt}: ${lo}–${hi} barely spread`);
    }
  });

  test('capped at backoffMax however many attempts', () => {
    const [lo, hi] = range(() => retryDelay(policy, failed(), { counted: 40, rateLimitedInARow: 0 }));
    assert.ok(lo >= policy.maxMs / 2 && hi <= policy.maxMs, `${lo}–${hi}`);
  });

  test("a peer's longer Retry-After (a 503) is honoured, capped at an hour; a shorter one does not undercut the backoff", () => {
    assert.equal(retryDelay(policy, failed({ retryAfterMs: 7000 }), { counted: 1, rateLimitedInARow: 0 }), 7000);
    assert.equal(retryDelay(policy, failed({ retryAfterMs: 30 * 24 * 3600_000 }), { counted: 1, rateLimitedInARow: 0 }), PEER_WAIT_CAP_MS);
    const [lo] = range(() => retryDelay(policy, failed({ retryAfterMs: 0 }), { counted: 3, rateLimitedInARow: 0 }));
    assert.ok(lo >= 2000, `Retry-After: 0 on a 503 still backs off (${lo})`);
  });
});

describe('retry policy: rate-limited retries', () => {
  test('Retry-After: 0 (or none) waits at least the floor', () => {
    for (const wait of [0, undefined, 5]) {
      const [lo, hi] = range(() => retryDelay(policy, limited(wait), { counted: 1, rateLimitedInARow: 1 }));
      assert.ok(lo >= policy.rateLimitFloorMs, `retryAfter ${wait}: ${lo} under the floor`);
      assert.ok(hi <= policy.rateLimitFloorMs * 1.25, `retryAfter ${wait}: ${hi} over the floor and its spread`);
    }
  });

  test('a peer that keeps answering 429 is backed off: the floor doubles for each 429 in a row, up to backoffMax', () => {
    const floor = policy.rateLimitFloorMs;
    for (const [inARow, least] of [[1, floor], [2, 2 * floor], [3, 4 * floor], [6, 32 * floor]] as const) {
      const [lo, hi] = range(() => retryDelay(policy, limited(0), { counted: 1, rateLimitedInARow: inARow }));
      assert.ok(lo >= least && hi <= least * 1.25, `${inARow} in a row: ${lo}–${hi}, expected ${least}–${least * 1.25}`);
    }
    const [lo, hi] = range(() => retryDelay(policy, limited(0), { counted: 1, rateLimitedInARow: 50 }));
    assert.ok(lo >= policy.maxMs && hi <= policy.maxMs * 1.25, `capped: ${lo}–${hi}`);
  });

  test("the peer's own wait wins when it is longer, capped at an hour", () => {
    assert.equal(retryDelay(policy, limited(30_000), { counted: 1, rateLimitedInARow: 1 }), 30_000);
    assert.equal(retryDelay(policy, limited(10 * 24 * 3600_000), { counted: 1, rateLimitedInARow: 1 }), PEER_WAIT_CAP_MS);
  });

  test('the floor holds even when backoffMax is below it', () => {
    const tight = { ...policy, maxMs: 200 };
    const [lo] = range(() => retryDelay(tight, limited(0), { counted: 1, rateLimitedInARow: 5 }));
    assert.ok(lo >= tight.rateLimitFloorMs, String(lo));
  });

  test('rate-limited tries are not counted: 20 × 429 leave the attempts as they were, and the next failure counts from there', () => {
    let tries: Tries = { counted: 0, rateLimitedInARow: 0 };
    tries = afterFailure(tries, failed());
    for (let i = 0; i < 20; i++) tries = afterFailure(tries, limited(0));
    assert.deepEqual(tries, { counted: 1, rateLimitedInARow: 20 });
    tries = afterFailure(tries, failed());
    assert.deepEqual(tries, { counted: 2, rateLimitedInARow: 0 }, 'another failure counts, and ends the run of 429s');
    // Its backoff is that of a second attempt, whatever the 429s before it.
    const [lo, hi] = range(() => retryDelay(policy, failed(), tries));
    assert.ok(lo >= 1000 && hi <= 2000, `${lo}–${hi}`);
  });

});

describe('retry policy: classification and reasons', () => {
  test('a stack overflow is the message, not the peer: permanent, with a sentence', () => {
    const failure = classifyFailure(new RangeError('Maximum call stack size exceeded'));
    assert.equal(failure.permanent, true);
    assert.equal(failure.code, UNFORMATTABLE);
    assert.equal(deadLetterReason('email', failure, policy), 'the message cannot be formatted for email: the message made the plugin fail (Maximum call stack size exceeded); every attempt would fail the same way');
  });

  test('reasons: refused by the peer, given up after the attempts, cannot be formatted', () => {
    assert.equal(deadLetterReason('slack', classifyFailure(new PermanentError('not_in_channel', { code: 'not_in_channel' })), policy), 'the slack peer refused it: not_in_channel');
    assert.equal(deadLetterReason('webhook', classifyFailure(new RetryableError('the webhook answered 500')), policy), 'gave up after 8 attempts; the last error was: the webhook answered 500');
    assert.match(deadLetterReason('matrix', classifyFailure(new PermanentError('the body nests…', { code: UNFORMATTABLE })), policy), /^the message cannot be formatted for matrix: /);
  });

  test('an unknown error is retried', () => {
    const failure = classifyFailure(new TypeError('fetch failed'));
    assert.equal(failure.permanent, false);
  });
});

describe('Retry-After, parsed once for every plugin', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  test('seconds and HTTP dates; a past date is 0; anything else is undefined', () => {
    assert.equal(retryAfterMs('120', now), 120_000);
    assert.equal(retryAfterMs(' 0 ', now), 0);
    assert.equal(retryAfterMs('1.5', now), 1500);
    assert.equal(retryAfterMs('Thu, 01 Jan 2026 00:01:30 GMT', now), 90_000);
    assert.equal(retryAfterMs('Thursday, 01-Jan-26 00:01:30 GMT', now), 90_000, 'RFC 850');
    assert.equal(retryAfterMs('Wed, 31 Dec 2025 23:00:00 GMT', now), 0, 'a date in the past means now (the floor applies)');
    for (const junk of ['soon', '-5', '1e9', '', '   ', null, undefined]) assert.equal(retryAfterMs(junk, now), undefined, String(junk));
  });
});
