import { retryDelay } from '../runtime/retry-policy.ts';

/** What went wrong with a call to CouchDB, as far as the wait before the next one is concerned. */
export type CouchFailureKind = 'refused' | 'unauthorized' | 'locked-out' | 'other';

export interface CouchPacingOptions {
  /** Delays after other failures: doubled from `initialMs` up to `maxMs`, with jitter. */
  backoff: { initialMs: number; maxMs: number };
  /** The longest wait while CouchDB refuses or drops connections. */
  refusedMaxMs: number;
  /** CouchDB's `[chttpd_auth_lockout]`: `threshold` failed logins within `periodMs` lock the user out for the rest of that period. */
  lockout: { threshold: number; periodMs: number };
}

/**
 * How long the follower waits before trying CouchDB again.
 *
 * - Refused or dropped connections (CouchDB restarting, or down): nothing
 *   listens, so a try costs CouchDB nothing; retrying within `refusedMaxMs`
 *   (1 s) puts the mapping back in force within a second or two of its return,
 *   where a backoff grown during the outage would wait up to 30 s.
 * - A wrong password: CouchDB 3 counts failed logins per client address and
 *   user in an entry that lives `max_lifetime` (5 min) from the first failure,
 *   and at `threshold` (5) locks the user out for every client of that address,
 *   right password or not, until the entry expires. So this process keeps its
 *   own failed logins to ⌊(threshold − 1) / 2⌋ = 2 in any window of the
 *   period plus a tenth (clock and timer slack): a second try after a second
 *   or so (a password being set as the hub starts), then one more only once
 *   the first has left the window. Two hubs of one host with the same wrong
 *   password then make 4, still below 5, with one left for a person. (An even
 *   pace would not do: one try every 65 s is 5 in 5 minutes.)
 * - Locked out: wait a whole period, the longest the lock can last (tries
 *   meanwhile are refused whatever the password, and do not prolong it).
 * - Anything else (5xx, a missing database, timeouts): exponential backoff.
 */
export class CouchPacing {
  readonly #o: CouchPacingOptions;
  #failures = 0;
  /** The kind of the last failure: a new kind starts its backoff afresh (refused for a minute, then a 503 while CouchDB starts, is not a 30 s wait). */
  #lastKind: CouchFailureKind | undefined;
  /** When this process's recent failed logins were answered (`performance.now()`: immune to clock changes). */
  #authFailures: number[] = [];

  constructor(options: CouchPacingOptions) {
    this.#o = options;
  }

  /** The window within which failed logins are counted, with slack. */
  get #window(): number {
    return Math.round(this.#o.lockout.periodMs * 1.1);
  }

  /** A call went through: the backoff starts over (failed logins stay counted, as they do at CouchDB). */
  succeeded(): void {
    this.#failures = 0;
    this.#lastKind = undefined;
  }

  /** The wait before the next try after a failure of this kind, answered at `now`. */
  delay(kind: CouchFailureKind, now = performance.now()): number {
    const { backoff, refusedMaxMs, lockout } = this.#o;
    if (kind !== this.#lastKind) [this.#failures, this.#lastKind] = [0, kind];
    const attempt = ++this.#failures;
    const exponential = (maxMs: number) =>
      retryDelay({ maxAttempts: Number.POSITIVE_INFINITY, baseMs: Math.min(backoff.initialMs, maxMs), maxMs, rateLimitFloorMs: 0 }, { permanent: false, rateLimited: false, retryAfterMs: undefined, code: kind, message: kind }, { counted: attempt, rateLimitedInARow: 0 });
    if (kind === 'refused') return exponential(refusedMaxMs);
    if (kind === 'locked-out') return this.#window;
    if (kind === 'other') return exponential(backoff.maxMs);
    this.#authFailures = [...this.#authFailures.filter((at) => at > now - this.#window), now];
    const allowed = Math.max(1, Math.floor((lockout.threshold - 1) / 2));
    const quick = exponential(backoff.maxMs);
    if (this.#authFailures.length < allowed) return quick;
    // The next try must wait until the oldest failure counted leaves the window.
    const oldest = this.#authFailures[this.#authFailures.length - allowed]!;
    return Math.max(quick, oldest + this.#window - now);
  }
}
