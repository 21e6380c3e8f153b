import { setTimeout as sleep } from 'node:timers/promises';
import ms from 'ms';
import type { RequestOptions, ServerScope } from 'nano';
import type { Logger } from 'pino';
import { type CouchFailureKind, CouchPacing } from './couch-pacing.ts';
import { type CouchUrl, parseCouchUrl } from './couch-url.ts';
import type { MappingSource, MappingUpdate } from './source.ts';

export interface CouchMappingSourceOptions {
  /** `http://admin:secret@host:5984`: the user info becomes Basic auth and is never shown. */
  url: string;
  db: string;
  docId: string;
  logger: Logger;
  /** How often CouchDB sends a keep-alive newline on the `_changes` long-poll. Default 10 s. */
  heartbeatMs?: number;
  /** How long one long-poll (and one `get`/`put` request) may take. Default 30 s. */
  timeoutMs?: number;
  /** Delays between reconnection attempts: doubled from `initialMs` up to `maxMs`, with jitter. Default 1 s to 30 s. */
  backoff?: { initialMs: number; maxMs: number };
  /** The longest wait between tries while CouchDB refuses connections (down, restarting). Default 1 s. */
  refusedMaxMs?: number;
  /** The server's `[chttpd_auth_lockout]` `threshold` and `max_lifetime`, which the retries after a wrong password stay below. Default CouchDB's: 5 in 5 min. */
  lockout?: { threshold: number; periodMs: number };
}

/** An error of this source: the message names the place without the password; `statusCode` is CouchDB's answer, if any. */
export type CouchSourceError = Error & { statusCode?: number; kind?: CouchFailureKind };

/**
 * The mapping document in CouchDB, followed through `_changes`.
 *
 * Not nano's `changesReader`: it gives up for good on any 4xx (we must start
 * over after a 400 on a stale `since`, and keep trying after a 401), sleeps in
 * a timer that its `stop()` cannot clear, waits a fixed 5 s to 60 s, and reads
 * pouchdb-server's `text/plain` replies as strings, so it never advances. The
 * loop below uses `nano.request` with an AbortSignal instead.
 */
export class CouchMappingSource implements MappingSource {
  readonly description: string;
  #connected = false;
  /** nano, loaded with the first request: a hub whose mapping is a file never holds it. */
  #couch: Promise<ServerScope> | undefined;
  readonly #couchUrl: string;
  #url: CouchUrl;
  #o: Required<Omit<CouchMappingSourceOptions, 'url'>>;
  /** Aborted by `stop()`: ends the request in flight and the backoff sleep at once. */
  #stop: AbortController | undefined;
  #loop: Promise<void> | undefined;
  /** The last sequence seen: opaque ("12-g1AAAA…" in CouchDB 3, a number in PouchDB), only ever sent back. */
  #since: string | undefined;
  /** What was emitted last (a revision, `null` for no document), so that a reconnection does not emit it twice. */
  #seen: string | null | undefined;
  #pacing: CouchPacing;

  constructor(options: CouchMappingSourceOptions) {
    this.#url = parseCouchUrl(options.url);
    this.description = `${this.#url.shown}/${options.db}/${options.docId}`;
    this.#couchUrl = options.url;
    this.#o = {
      db: options.db,
      docId: options.docId,
      logger: options.logger.child({ mappingSource: this.description }),
      heartbeatMs: options.heartbeatMs ?? 10_000,
      timeoutMs: options.timeoutMs ?? 30_000,
      backoff: options.backoff ?? { initialMs: 1_000, maxMs: 30_000 },
      refusedMaxMs: options.refusedMaxMs ?? 1_000,
      lockout: options.lockout ?? { threshold: 5, periodMs: 300_000 },
    };
    const { backoff, refusedMaxMs, lockout } = this.#o;
    this.#pacing = new CouchPacing({ backoff, refusedMaxMs: Math.min(refusedMaxMs, backoff.maxMs), lockout });
  }

  get connected(): boolean {
    return this.#connected;
  }

  async start(onUpdate: (update: MappingUpdate) => void, onError: (error: Error) => void): Promise<void> {
    if (this.#stop && !this.#stop.signal.aborted) return;
    const stop = new AbortController();
    this.#stop = stop;
    const emit = (update: MappingUpdate) => {
      const key = update.document === null ? null : update.revision;
      if (stop.signal.aborted || key === this.#seen) return;
      this.#seen = key;
      onUpdate(update);
    };
    this.#loop = this.#follow(stop.signal, emit, onError);
  }

  async stop(): Promise<void> {
    this.#stop?.abort();
    await this.#loop;
    this.#connected = false;
  }

  get(): Promise<MappingUpdate | null> {
    return this.#fetch(AbortSignal.timeout(this.#o.timeoutMs));
  }

  async put(document: Record<string, unknown>): Promise<string> {
    const { db, docId, timeoutMs } = this.#o;
    for (let created = false, retried = false; ; ) {
      try {
        const current = await this.#fetch(AbortSignal.timeout(timeoutMs));
        const body: Record<string, unknown> = { ...document, _id: docId, _rev: current?.revision };
        if (!current) delete body._rev;
        return String((await this.#request('write', { db, doc: docId, method: 'PUT', body }, AbortSignal.timeout(timeoutMs))).rev);
      } catch (err) {
        const status = (err as CouchSourceError).statusCode;
        if (status === 404 && !created) {
          created = true;
          await this.#request('create database for', { db, method: 'PUT' }, AbortSignal.timeout(timeoutMs)).catch((e: CouchSourceError) => {
            if (e.statusCode !== 412) throw e; // 412: someone else created it meanwhile
          });
        } else if (status === 409 && !retried) {
          retried = true; // written by someone else between our GET and PUT: once more with the fresh _rev
        } else throw err;
      }
    }
  }

  async #follow(signal: AbortSignal, emit: (update: MappingUpdate) => void, onError: (error: Error) => void): Promise<void> {
    /** The failure reported last since the last connection: one that repeats is reported once (CouchDB down for an hour is one line, not 3,600). */
    let reported: string | undefined;
    while (!signal.aborted) {
      try {
        if (!this.#connected) {
          await this.#connect(signal, emit);
          reported = undefined;
        }
        await this.#poll(signal, emit);
        this.#pacing.succeeded();
      } catch (err) {
        if (signal.aborted) break;
        const failure = err as CouchSourceError;
        this.#connected = false;
        if (failure.statusCode === 400 && this.#since !== undefined) {
          // A since CouchDB does not know (malformed, or from before a restore): start over from the document.
          this.#o.logger.warn({ err: failure.message }, 'CouchDB rejected the saved sequence; reading the document again');
          this.#since = undefined;
        }
        const wait = this.#pacing.delay(failure.kind ?? 'other');
        const report = failure.kind === 'unauthorized' || failure.kind === 'locked-out' ? this.#withNextAttempt(failure, wait) : failure;
        if (report.message !== reported) onError(report);
        reported = report.message;
        await sleep(wait, undefined, { signal }).catch(() => {});
      }
    }
  }

  /** The failure, saying when the next login is tried (paced below CouchDB's lockout, so worth knowing). */
  #withNextAttempt(failure: CouchSourceError, waitMs: number): CouchSourceError {
    const at = new Date(Date.now() + waitMs).toISOString().replace(/\.\d+Z$/, 'Z');
    const { threshold, periodMs } = this.#o.lockout;
    const why = failure.kind === 'unauthorized' ? `, paced to stay below CouchDB's lockout (${threshold} failed logins in ${ms(periodMs, { long: true })})` : '';
    const message = `${failure.message}; next attempt at ${at} (in ${ms(Math.max(1000, Math.round(waitMs / 1000) * 1000), { long: true })}${why})`;
    return Object.assign(new Error(message), { statusCode: failure.statusCode, kind: failure.kind });
  }

  /** Opens the follow (below), within `timeoutMs`. */
  async #connect(stopped: AbortSignal, emit: (update: MappingUpdate) => void): Promise<void> {
    // A CouchDB that takes the connection and never answers must not hold the follower for good.
    const expiry = new AbortController();
    const deadline = setTimeout(() => expiry.abort(new Error(`no answer within ${ms(this.#o.timeoutMs)}`)), this.#o.timeoutMs);
    try {
      await this.#open(AbortSignal.any([stopped, expiry.signal]), emit);
    } finally {
      clearTimeout(deadline);
    }
    this.#connected = true;
    this.#o.logger.info({ since: this.#since }, 'following the mapping document in CouchDB');
  }

  /**
   * Checks that the database answers; when there is no sequence to resume from
   * (first start, or after a 400) also reads the document. The sequence is read
   * before the document, so that a change made between the two is replayed by
   * the feed rather than lost.
   */
  async #open(signal: AbortSignal, emit: (update: MappingUpdate) => void): Promise<void> {
    const info = await this.#request('read database', { db: this.#o.db }, signal).catch((e: CouchSourceError) => {
      if (e.statusCode !== 404) throw e;
      emit({ revision: '', document: null });
      throw Object.assign(new Error(`CouchDB database ${this.description} does not exist yet; \`hub mapping put\` creates it`), {
        statusCode: 404,
      });
    });
    if (this.#since === undefined) {
      emit((await this.#fetch(signal)) ?? { revision: '', document: null });
      this.#since = String(info.update_seq);
    }
  }

  /**
   * One long-poll. CouchDB keeps it open past `timeout` when `heartbeat` is set
   * (heartbeat overrides it) and pouchdb-server ignores `timeout`; nano buffers
   * the body, so heartbeats are invisible here. Hence our own deadline: the poll
   * is abandoned and issued again from the same `since` (nothing lost), and a
   * half-open connection is noticed within that time.
   */
  async #poll(signal: AbortSignal, emit: (update: MappingUpdate) => void): Promise<void> {
    const { db, docId, heartbeatMs, timeoutMs } = this.#o;
    const expiry = new AbortController();
    const deadline = setTimeout(() => expiry.abort(), timeoutMs + 2 * heartbeatMs);
    try {
      const qs = { feed: 'longpoll', since: this.#since, heartbeat: heartbeatMs, timeout: timeoutMs, filter: '_doc_ids', include_docs: true };
      const request = { db, path: '_changes', method: 'POST', qs, body: { doc_ids: [docId] } };
      const reply = await this.#request('follow', request, AbortSignal.any([signal, expiry.signal]));
      for (const change of reply?.results ?? []) {
        if (change.id !== docId) continue;
        emit({ revision: String(change.doc?._rev ?? change.changes?.[0]?.rev), document: change.deleted ? null : change.doc });
      }
      if (reply?.last_seq !== undefined) this.#since = String(reply.last_seq);
    } catch (err) {
      if (!expiry.signal.aborted) throw err;
    } finally {
      clearTimeout(deadline);
    }
  }

  async #fetch(signal: AbortSignal): Promise<MappingUpdate | null> {
    try {
      const doc = await this.#request('read', { db: this.#o.db, doc: this.#o.docId }, signal);
      return { revision: String(doc._rev), document: doc };
    } catch (err) {
      if ((err as CouchSourceError).statusCode === 404) return null; // no such document (or database)
      throw err;
    }
  }

  async #request(what: string, request: RequestOptions, signal: AbortSignal): Promise<any> {
    const withSignal: RequestOptions & { signal: AbortSignal } = { ...request, signal };
    try {
      this.#couch ??= import('nano').then(({ default: nano }) => nano({ url: this.#couchUrl }));
      const reply: unknown = await (await this.#couch).request(withSignal);
      // pouchdb-server types its JSON `text/plain`, which nano hands back as a string (other types as a Buffer).
      const text = Buffer.isBuffer(reply) ? reply.toString('utf8') : reply;
      return typeof text !== 'string' ? text : text.trim() === '' ? null : JSON.parse(text);
    } catch (err) {
      throw this.#failure(what, err);
    }
  }

  /** A fresh error, so that nothing of nano's (request headers, the URL) travels with it; the password scrubbed anyway. */
  #failure(what: string, err: unknown): CouchSourceError {
    const { statusCode, message } = err as { statusCode?: number; message?: string };
    // nano reports a refused or broken connection as "error happened in your connection. Reason: <cause>".
    const raw = message ?? String(err);
    const reason = raw.startsWith('error happened') ? `unreachable (${raw.replace(/^.*Reason: /, '')})` : raw;
    const kind = failureKind(statusCode, raw);
    const user = this.#url.user ? `user "${this.#url.user}"` : '';
    let text = `CouchDB: cannot ${what} ${this.description}: ${statusCode ? `${statusCode} ` : ''}${reason}`;
    if (kind === 'locked-out') {
      const lifts = ms(this.#o.lockout.periodMs, { long: true });
      text = `CouchDB has locked out ${user || 'the user'} at ${this.description} after repeated failed logins from this host (403 ${reason}): check the password in COUCHDB_URL, and any other client of this host that logs in as that user; CouchDB lifts the lock at most ${lifts} after the first failure`;
    } else if (statusCode === 401) {
      text = user
        ? `CouchDB refused the credentials of ${user} for ${this.description} (401 ${reason}); check the user and password in COUCHDB_URL`
        : `CouchDB refused the credentials (none given) for ${this.description} (401 ${reason}); set an admin user and password in COUCHDB_URL`;
    } else if (statusCode === 403) {
      text = `CouchDB refused ${user || 'an anonymous user'} access to ${this.description} (403 ${reason}); give COUCHDB_URL an admin, or a member of the database`;
    }
    return Object.assign(new Error(this.#url.scrub(text)), { statusCode, kind });
  }
}

function failureKind(statusCode: number | undefined, message: string): CouchFailureKind {
  if (statusCode === 401) return 'unauthorized';
  // CouchDB 3's answer to any login while locked out: 403 "Account is temporarily locked due to multiple authentication failures".
  if (statusCode === 403 && /temporarily locked/i.test(message)) return 'locked-out';
  if (statusCode === undefined && /ECONNREFUSED|ECONNRESET|EPIPE|other side closed|socket hang up/i.test(message)) return 'refused';
  return 'other';
}
