/**
 * @slack/web-api's failures mapped to the hub's two errors. The SDK's errors
 * are told apart by their `code` (`slack_webapi_*`), not by class, and a
 * platform error by Slack's own `error` string. Messages name the target and
 * say what to do; they are built from Slack's error code and our own words,
 * so the token can never end up in one.
 */
import { PermanentError, RetryableError, isPermanent, isRetryable, retryAfterMs } from 'notification-hub/plugin-api';

type Permanent = (target: string) => string;

/** Slack errors that no retry will fix, with what a person should do about them. */
const PERMANENT: Record<string, Permanent> = {
  channel_not_found: (t) => `the channel ${t} does not exist or the bot cannot see it`,
  not_in_channel: (t) => `the bot is not a member of ${t}: invite it there (/invite @your-bot)`,
  is_archived: (t) => `the channel ${t} is archived: unarchive it or change the mapping`,
  restricted_action: (t) => `a workspace setting prevents the bot from posting in ${t}`,
  msg_too_long: () => 'the message is too long for Slack',
  no_text: () => 'the message has no text',
  too_many_attachments: () => 'the message has too many attachments',
  not_authed: () => 'no token was sent: set SLACK_TOKEN',
  invalid_auth: () => 'the token is not valid for this workspace: check SLACK_TOKEN',
  account_inactive: () => 'the token belongs to a deactivated user or app: install the app again and set SLACK_TOKEN',
  token_revoked: () => 'the token was revoked: install the app again and set SLACK_TOKEN',
  missing_scope: () => 'the token lacks the chat:write scope: add it to the app and reinstall',
  invalid_arguments: () => 'Slack refused the request arguments',
};

/** Slack errors on its side, worth another try. */
const RETRYABLE = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);

interface SlackErrorLike {
  code?: unknown;
  retryAfter?: unknown;
  statusCode?: unknown;
  headers?: Record<string, string>;
  data?: { error?: unknown };
  original?: { message?: unknown };
}

export function classifySlackError(err: unknown, target: string): PermanentError | RetryableError {
  if (isPermanent(err) || isRetryable(err)) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SlackErrorLike;
  switch (e.code) {
    case 'slack_webapi_rate_limited_error':
      return rateLimited(Number(e.retryAfter), err);
    case 'slack_webapi_platform_error': {
      const code = String(e.data?.error ?? 'unknown_error');
      const reason = PERMANENT[code];
      if (reason) return new PermanentError(`Slack says ${code}: ${reason(target)}`, { code, cause: err });
      if (code === 'ratelimited' || code === 'rate_limited') return rateLimited(Number.NaN, err);
      const why = RETRYABLE.has(code) ? 'a fault on Slack\'s side' : 'not known to this plugin';
      return new RetryableError(`Slack says ${code} (${why}) for ${target}`, { code, cause: err });
    }
    case 'slack_webapi_http_error': {
      const status = Number(e.statusCode);
      if (status === 429) return rateLimited((retryAfterMs(e.headers?.['retry-after']) ?? Number.NaN) / 1000, err);
      return new RetryableError(`Slack answered HTTP ${status} for ${target}`, { code: `http_${status}`, cause: err });
    }
    case 'slack_webapi_request_error':
      return new RetryableError(`Slack could not be reached: ${String(e.original?.message ?? 'request failed')}`, {
        code: 'request_error',
        cause: err,
      });
    default: {
      const message = err instanceof Error ? err.message : String(err);
      return new RetryableError(`Slack delivery to ${target} failed: ${message}`, { code: 'unknown', cause: err });
    }
  }
}

function rateLimited(seconds: number, cause: unknown): RetryableError {
  const known = Number.isFinite(seconds) && seconds >= 0;
  return new RetryableError(
    known ? `Slack rate limit: retry after ${seconds} s` : 'Slack rate limit: retry later',
    { code: 'ratelimited', rateLimited: true, retryAfterMs: known ? seconds * 1000 : undefined, cause },
  );
}
