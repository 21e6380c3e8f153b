import { isPermanent, isRetryable } from '../errors.ts';

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
  // Anything a plugin did not classify is retried: a bug or an odd network
  // fault is no reason to drop an alert, and the attempts still run out.
  return { permanent: false, rateLimited: false, retryAfterMs: undefined, code: (err as { code?: string })?.code ?? 'error', message };
}

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

/**
 * How long to wait before the next try: the peer's own wait when it gave one
 * (capped so a bogus header cannot park a target for days), otherwise
 * exponential backoff with full jitter, so that many workers retrying after an
 * outage do not hit the peer in lock-step.
 */
export function retryDelay(policy: RetryPolicy, failure: Failure, attempt: number): number {
  if (failure.retryAfterMs !== undefined && failure.retryAfterMs >= 0) return Math.min(failure.retryAfterMs, 60 * 60_000);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}
