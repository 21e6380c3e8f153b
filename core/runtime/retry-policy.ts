import { UNFORMATTABLE, isPermanent, isRetryable } from '../errors.ts';

/** A failed call to a peer, in the hub's one taxonomy. */
export interface Failure {
  permanent: boolean;
  /** A 429: wait as told, and do not count the attempt. */
  rateLimited: boolean;
  retryAfterMs: number | undefined;
  code: string;
  message: string;
}

export function classifyFailure(err: unknown): Failure {
  const message = err instanceof Error ? err.message : String(err);
  if (isPermanent(err)) return { permanent: true, rateLimited: false, retryAfterMs: undefined, code: err.code, message };
  if (isRetryable(err)) return { permanent: false, rateLimited: err.rateLimited, retryAfterMs: err.retryAfterMs, code: err.code, message };
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return { permanent: false, rateLimited: false, retryAfterMs: undefined, code: 'timeout', message: `no answer in time (${message})` };
  }
  // A stack overflow or a string too long is the message's doing, whoever the
  // peer: retrying would only hold its targets through every attempt.
  if (err instanceof Error && err.name === 'RangeError') {
    const why = `the message made the plugin fail (${message.split('\n')[0]}); every attempt would fail the same way`;
    return { permanent: true, rateLimited: false, retryAfterMs: undefined, code: UNFORMATTABLE, message: why };
  }
  // Anything else a plugin did not classify is retried: a bug or an odd network
  // fault is no reason to drop an alert, and the attempts still run out.
  return { permanent: false, rateLimited: false, retryAfterMs: undefined, code: (err as { code?: string })?.code ?? 'error', message };
}

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
  /** The least a rate-limited retry waits, whatever the peer says (`Retry-After: 0` would otherwise be a hot loop). */
  rateLimitFloorMs: number;
}

/** The policy of `delivery.*` in the config. */
export function retryPolicy(delivery: { maxAttempts: number; backoffBase: number; backoffMax: number; rateLimitFloor: number }): RetryPolicy {
  return { maxAttempts: delivery.maxAttempts, baseMs: delivery.backoffBase, maxMs: delivery.backoffMax, rateLimitFloorMs: delivery.rateLimitFloor };
}

/** Where one delivery stands: the attempts that failed and count, and the 429s met in a row just now. */
export interface Tries {
  counted: number;
  rateLimitedInARow: number;
}

/** The tries after one more failure: a 429 is not counted as an attempt (a long storm never dead-letters), any other failure is. */
export function afterFailure(tries: Tries, failure: Failure): Tries {
  return failure.rateLimited
    ? { counted: tries.counted, rateLimitedInARow: tries.rateLimitedInARow + 1 }
    : { counted: tries.counted + 1, rateLimitedInARow: 0 };
}

/** A peer's own wait is honoured up to this: a bogus header must not park a target for days. */
export const PEER_WAIT_CAP_MS = 60 * 60_000;

/**
 * How long to wait before the next try. A 429 waits the peer's wait, but at
 * least the floor, doubled for each 429 met in a row (up to `maxMs`, and a
 * quarter more at random so that targets limited together do not come back
 * together): a peer that keeps answering 429 with `Retry-After: 0` gets at
 * most one request a floor, then fewer. Other failures back off
 * exponentially with jitter (between half and all of the ceiling, so that
 * workers retrying after an outage do not hit the peer in lock-step), or
 * wait the peer's `Retry-After` when it is longer.
 */
export function retryDelay(policy: RetryPolicy, failure: Failure, tries: Tries): number {
  const peerWait = failure.retryAfterMs !== undefined && failure.retryAfterMs >= 0 ? Math.min(failure.retryAfterMs, PEER_WAIT_CAP_MS) : 0;
  if (failure.rateLimited) {
    const floor = policy.rateLimitFloorMs;
    const backoff = Math.min(Math.max(floor, policy.maxMs), floor * 2 ** Math.max(0, tries.rateLimitedInARow - 1));
    return Math.max(peerWait, Math.round(backoff + (Math.random() * backoff) / 4));
  }
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, tries.counted - 1));
  return Math.max(peerWait, Math.round(ceiling / 2 + (Math.random() * ceiling) / 2));
}

/**
 * `Retry-After` in milliseconds: delta-seconds (`120`) or an HTTP date
 * (RFC 9110 §10.2.3); a date in the past is 0 (the retry policy's floor then
 * applies). `undefined` when absent or neither.
 */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  // A date names its day or month; this keeps `-5` or `1e9` from parsing as a year.
  if (!/[a-z]{3}/i.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Why a delivery ends in the dead letters, in the words of `hub dead list`. */
export function deadLetterReason(channel: string, failure: Failure, policy: RetryPolicy): string {
  if (!failure.permanent) return `gave up after ${policy.maxAttempts} attempts; the last error was: ${failure.message}`;
  if (failure.code === UNFORMATTABLE) return `the message cannot be formatted for ${channel}: ${failure.message}`;
  return `the ${channel} peer refused it: ${failure.message}`;
}
