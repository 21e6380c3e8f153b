/**
 * matrix-js-sdk failures → the hub's error taxonomy. One table; see
 * test/plugins/matrix-classify-error.unit.test.ts. Errors are read by shape, not
 * class, so that another copy of the SDK classifies the same.
 */
import { PermanentError, RetryableError, type SecretRedactor, isPermanent, isRetryable, retryAfterMs as parseRetryAfter } from 'notification-hub/plugin-api';

interface SdkError {
  name?: string;
  message?: string;
  errcode?: string;
  httpStatus?: number;
  data?: { errcode?: string; error?: string; retry_after_ms?: unknown };
  httpHeaders?: { get(name: string): string | null };
  url?: string;
}

/** What the errcodes that need a person mean, in words. */
const HINTS: Record<string, string> = {
  M_UNKNOWN_TOKEN: "the homeserver does not recognise the bot's access token: check MATRIX_ACCESS_TOKEN",
  M_MISSING_TOKEN: 'the homeserver got no access token: set MATRIX_ACCESS_TOKEN',
  M_TOO_LARGE: 'the message is too large for the homeserver',
  M_BAD_JSON: 'the homeserver refused the request as malformed',
  M_NOT_JSON: 'the homeserver refused the request as malformed',
};

/**
 * Classify `err` (thrown by the SDK while `action`, e.g. "sending to !r:hs").
 * Taxonomy errors pass through. Every message is redacted, and an error that held a secret is not kept as the cause.
 */
export function classifyError(err: unknown, action: string, redactor?: SecretRedactor): PermanentError | RetryableError {
  if (isPermanent(err) || isRetryable(err)) return err;
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as SdkError;
  const status = e.httpStatus;
  const errcode = e.errcode ?? e.data?.errcode;
  const said = e.data?.error ? `: ${e.data.error}` : '';
  const answer = `the homeserver answered ${status ?? ''} ${errcode ?? ''}`.replace(/\s+/g, ' ').trim() + said;
  const shown = JSON.stringify({ m: e.message, u: e.url, d: e.data });
  const redact = (text: string) => redactor?.redact(text) ?? text;
  const cause = redact(shown) === shown ? err : undefined;
  const retryable = (code: string, text: string, extra: { retryAfterMs?: number; rateLimited?: boolean } = {}) =>
    new RetryableError(redact(`${action}: ${text}`), { code, cause, ...extra });
  const permanent = (code: string, text: string) => new PermanentError(redact(`${action}: ${text}`), { code, cause });

  if (e.name === 'AbortError' || e.name === 'TimeoutError') return retryable('timeout', 'the homeserver did not answer in time');
  if (e.name === 'ConnectionError') {
    return retryable('network', `cannot reach the homeserver (${(e.message ?? 'network error').replace(/^fetch failed: /, '')})`);
  }
  if (errcode === 'M_LIMIT_EXCEEDED' || status === 429) {
    return retryable('M_LIMIT_EXCEEDED', `rate limited; ${answer}`, { rateLimited: true, retryAfterMs: retryAfterMs(e) });
  }
  if (status === undefined) return retryable('unknown', e.message ?? 'unknown error');
  if (status >= 500 || status === 408) return retryable(errcode ?? `http_${status}`, answer);
  // An operator can lift a resource limit (MAU, disk); an alert should wait for that, not be dropped.
  if (errcode === 'M_RESOURCE_LIMIT_EXCEEDED') return retryable(errcode, answer);
  const hint = errcode && HINTS[errcode];
  return permanent(errcode ?? `http_${status}`, hint ? `${hint} (${answer})` : answer);
}

/**
 * The server's wait: `Retry-After` (seconds or an HTTP date; what servers
 * send since Matrix 1.10) or the deprecated `retry_after_ms` in the body.
 * With both, the longer one, so that neither is undercut.
 */
export function retryAfterMs(e: SdkError): number | undefined {
  const waits: number[] = [];
  const header = parseRetryAfter(e.httpHeaders?.get('Retry-After'));
  if (header !== undefined) waits.push(header);
  const body = e.data?.retry_after_ms;
  if (typeof body === 'number' && Number.isFinite(body) && body >= 0) waits.push(body);
  return waits.length > 0 ? Math.max(...waits) : undefined;
}
