/**
 * The one error taxonomy of the hub. A plugin throws one of these two; anything
 * else it throws is treated as retryable (a bug or a network fault is not a
 * reason to drop an alert). Checked by `name` as well as `instanceof`, because
 * plugins loaded from another folder may carry their own copy of this module.
 */

/** The delivery cannot succeed as asked (bad address, forbidden room): dead-letter it now. */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';
  /** A stable, machine-readable code (`M_FORBIDDEN`, `smtp_550`, `channel_not_found`). */
  readonly code: string;
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = options.code ?? 'permanent';
  }
}

/**
 * The delivery may succeed later (network, 5xx, 429). `retryAfterMs` is the
 * peer's own wait; with `rateLimited` the attempt is not counted, so a long
 * 429 storm never turns into a dead letter.
 */
export class RetryableError extends Error {
  override readonly name = 'RetryableError';
  readonly code: string;
  readonly retryAfterMs: number | undefined;
  readonly rateLimited: boolean;
  constructor(
    message: string,
    options: { code?: string; retryAfterMs?: number; rateLimited?: boolean; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = options.code ?? 'retryable';
    this.retryAfterMs = options.retryAfterMs;
    this.rateLimited = options.rateLimited ?? false;
  }
}

/**
 * The code of a PermanentError that is a property of the message, not of the
 * peer: a body the hub cannot format within its bounds (nesting depth,
 * table size, time). Every attempt and every target would fail the same way.
 */
export const UNFORMATTABLE = 'unformattable';

export function isPermanent(err: unknown): err is PermanentError {
  return err instanceof PermanentError || (err instanceof Error && err.name === 'PermanentError');
}

export function isRetryable(err: unknown): err is RetryableError {
  return err instanceof RetryableError || (err instanceof Error && err.name === 'RetryableError');
}

/** Errors of the hub itself (config, plugins, CLI input): a stable code and a sentence that says what to do. */
export class HubError extends Error {
  override readonly name = 'HubError';
  readonly code: HubErrorCode;
  constructor(code: HubErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.code = code;
  }
}

export type HubErrorCode =
  | 'HUB_ERR_CONFIG'
  | 'HUB_ERR_PLUGIN'
  | 'HUB_ERR_MAPPING'
  | 'HUB_ERR_USAGE'
  | 'HUB_ERR_REDIS'
  | 'HUB_ERR_NOT_FOUND';
