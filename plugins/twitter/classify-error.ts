/**
 * twitter-api-v2's failures mapped to the hub's two errors. Its errors carry
 * the request (and so the OAuth `Authorization` header, which names the app
 * key and the access token), so they are never attached as a `cause`: the
 * messages are built from the HTTP status and X's own problem `title` and
 * `detail`, which say what went wrong and hold nothing of ours.
 */
import { PermanentError, RetryableError, isPermanent, isRetryable } from 'notification-hub/plugin-api';

interface XProblem {
  title?: unknown;
  detail?: unknown;
  type?: unknown;
  errors?: Array<{ message?: unknown; detail?: unknown }>;
}

interface XErrorLike {
  type?: unknown;
  code?: unknown;
  data?: XProblem;
  rateLimit?: { reset?: unknown };
  headers?: Record<string, unknown>;
  requestError?: NetworkError;
  /** Where twitter-api-v2 1.x really keeps the network error: its `requestError` getter reads a field it never sets. */
  _options?: { error?: NetworkError };
}

interface NetworkError { message?: unknown; code?: unknown }

const CREDENTIALS = 'TWITTER_APP_KEY, TWITTER_APP_SECRET, TWITTER_ACCESS_TOKEN and TWITTER_ACCESS_SECRET';

export function classifyTwitterError(err: unknown, target: string, now = Date.now()): PermanentError | RetryableError {
  if (isPermanent(err) || isRetryable(err)) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as XErrorLike;
  if (e.type === 'request') {
    const network = e.requestError ?? e._options?.error;
    const why = String(network?.code ?? network?.message ?? 'request failed');
    return new RetryableError(`X could not be reached (${why})`, { code: 'network' });
  }
  if (e.type === 'partial-response') {
    return new RetryableError('X closed the connection before answering in full', { code: 'partial_response' });
  }
  if (e.type !== 'response' || typeof e.code !== 'number') {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return new RetryableError(`X delivery to ${target} failed: ${message}`, { code: 'unknown' });
  }

  const status = e.code;
  const says = `X answered ${status}${describe(e.data)}`;
  if (status === 429) return rateLimited(e, now);
  if (status >= 500 || status === 408) return new RetryableError(`${says} for ${target}`, { code: `x_${status}` });
  if (status === 401) {
    return new PermanentError(`${says}: the credentials were refused; check ${CREDENTIALS}`, { code: 'unauthorized' });
  }
  if (status === 403 && /duplicate content/i.test(text(e.data))) {
    return new PermanentError(`${says}: the same text was posted before`, { code: 'duplicate' });
  }
  if (status === 403) {
    const hint = target === 'post' ? 'the account may not post' : `${target} may not accept direct messages from the account`;
    return new PermanentError(`${says}: ${hint}`, { code: 'forbidden' });
  }
  if (status === 404) return new PermanentError(`${says} for ${target}`, { code: 'not_found' });
  if (status === 400) return new PermanentError(`${says}: the request was refused as invalid`, { code: 'invalid_request' });
  return new PermanentError(`${says} for ${target}`, { code: `x_${status}` });
}

/** Until `x-rate-limit-reset` (epoch seconds), which twitter-api-v2 parses into `rateLimit.reset`. */
function rateLimited(e: XErrorLike, now: number): RetryableError {
  const reset = Number(e.rateLimit?.reset ?? e.headers?.['x-rate-limit-reset']);
  const retryAfterMs = Number.isFinite(reset) && reset > 0 ? Math.max(0, reset * 1000 - now) : undefined;
  const until = retryAfterMs === undefined ? 'later' : `at ${new Date(reset * 1000).toISOString()}`;
  return new RetryableError(`X rate limit reached: the window reopens ${until}`, {
    code: 'rate_limited',
    rateLimited: true,
    retryAfterMs,
  });
}

/** X's own words: `title: detail`, or the messages of a v1-style `errors` list. */
function describe(problem: XProblem | undefined): string {
  const said = text(problem);
  return said ? ` (${said})` : '';
}

function text(problem: XProblem | undefined): string {
  if (!problem || typeof problem !== 'object') return '';
  const parts = [problem.title, problem.detail].filter((p): p is string => typeof p === 'string' && p.length > 0);
  const listed = (problem.errors ?? []).map((x) => x.message ?? x.detail).filter((m): m is string => typeof m === 'string');
  return [...new Set([...parts, ...listed])].join(': ').slice(0, 500);
}
