/**
 * Fault injection for the fake homeserver: failures for the next requests,
 * rate limiting of sends, a delay before every answer.
 */

/** An error answer, or `'timeout'`: the request is held and never answered. */
export type Fault = { status: number; errcode?: string; error?: string } | 'timeout';

export interface RateLimit {
  /** Every Nth send (`PUT /rooms/{roomId}/send/...`) is answered 429 M_LIMIT_EXCEEDED. 1 = every send. */
  every: number;
  retryAfterMs: number;
  /** Also send `Retry-After` (whole seconds, rounded up), as servers since Matrix 1.10 do. */
  header: boolean;
  /** Keep the deprecated `retry_after_ms` in the body (default true). */
  bodyField?: boolean;
  /** `Retry-After` exactly as given (an HTTP date, `0`) instead of the seconds of `retryAfterMs`; implies `header`. */
  retryAfter?: string;
  /** Only this many 429s, then sends pass again. */
  times?: number;
}

export interface ErrorReply {
  status: number;
  body: { errcode: string; error: string; retry_after_ms?: number };
  headers?: Record<string, string>;
}

const DEFAULT_ERRCODE: Record<number, string> = {
  400: 'M_BAD_JSON', 401: 'M_UNKNOWN_TOKEN', 403: 'M_FORBIDDEN', 404: 'M_NOT_FOUND', 413: 'M_TOO_LARGE', 429: 'M_LIMIT_EXCEEDED',
};

export class Faults {
  delayMs = 0;
  private pending: Array<{ fault: Fault; only?: RegExp }> = [];
  private limit: RateLimit | undefined;
  private sends = 0;

  /** Answer the next `n` requests (that match `only`, tested against `METHOD /path`) with `fault`. */
  failNext(n: number, fault: Fault, only?: RegExp): void {
    for (let i = 0; i < n; i++) this.pending.push({ fault, only });
  }

  /** Forget the failures not taken yet. */
  clear(): void {
    this.pending = [];
  }

  rateLimit(limit: RateLimit | undefined): void {
    this.limit = limit;
    this.sends = 0;
  }

  /** The fault for this request, if one is due; consumes it. */
  take(method: string, path: string): Fault | undefined {
    const line = `${method} ${path}`;
    const index = this.pending.findIndex((p) => !p.only || p.only.test(line));
    if (index < 0) return undefined;
    const [due] = this.pending.splice(index, 1);
    return due?.fault;
  }

  /** The 429 for this send, if it is one of the rate-limited ones. */
  limitSend(): ErrorReply | undefined {
    if (!this.limit) return undefined;
    this.sends += 1;
    if (this.sends % Math.max(1, this.limit.every) !== 0) return undefined;
    const { retryAfterMs, header, bodyField = true, retryAfter, times } = this.limit;
    if (times !== undefined && (this.limit.times = times - 1) <= 0) this.limit = undefined;
    const value = retryAfter ?? (header ? String(Math.ceil(retryAfterMs / 1000)) : undefined);
    return {
      status: 429,
      body: { errcode: 'M_LIMIT_EXCEEDED', error: 'Too Many Requests', ...(bodyField ? { retry_after_ms: retryAfterMs } : {}) },
      headers: value === undefined ? undefined : { 'Retry-After': value },
    };
  }
}

export function faultReply(fault: Exclude<Fault, 'timeout'>): ErrorReply {
  const errcode = fault.errcode ?? DEFAULT_ERRCODE[fault.status] ?? 'M_UNKNOWN';
  return { status: fault.status, body: { errcode, error: fault.error ?? `Injected failure (${fault.status})` } };
}
