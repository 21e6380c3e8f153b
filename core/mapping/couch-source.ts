import nano from 'nano';
import type { RequestOptions, ServerScope } from 'nano';
import type { Logger } from 'pino';
import type { MappingSource, MappingUpdate } from './source.ts';

export interface CouchMappingSourceOptions {
  /** `http://admin:secret@host:5984`: the user info becomes Basic auth and is never shown. */
  url: string;
  db: string;
  docId: string;
  logger: Logger;
  /** How often CouchDB sends a keep-alive newline on the `_changes` long-poll. Default 10 s. */
  heartbeatMs?: number;
  /** How long one long-poll may stay open before it is issued again. Default 30 s. */
  timeoutMs?: number;
  /** Delays between reconnection attempts: doubled from `initialMs` up to `maxMs`, with jitter. */
  backoff?: { initialMs: number; maxMs: number };
}

/** An error of this source: the message names the place without the password; `statusCode` is CouchDB's answer, if any. */
export type CouchSourceError = Error & { statusCode?: number };

/**
 * The mapping document in CouchDB, followed through `_changes`.
 *
 * Not nano's `changesReader`: it gives up for good on any 4xx (we must restart
 * after a 400 on a stale `since`, and keep trying after a 401), sleeps in a
 * timer that `stop()` cannot clear, waits a fixed 5 s…60 s, and reads
 * pouchdb-server's `text/plain` replies as strings, so it never advances. The
 * loop below uses `nano.request` with an AbortSignal instead.
 */
export class CouchMappingSource implements MappingSource {
  readonly description: string;
  #connected = false;
  #couch: ServerScope;
  #db: string;
  #docId: string;
  #log: Logger;
  #heartbeatMs: number;
  #timeoutMs: number;
  #backoff: { initialMs: number; maxMs: number };
  #user: string;
  #secrets: string[];
  #running = false;
  #loop: Promise<void> | undefined;
  #abort: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  /** The last sequence seen: opaque ("12-g1AAAA…" in CouchDB 3, a number in PouchDB), only ever sent back. */
  #since: string | undefined;
  /** The revision last emitted (`null` for an absent document), so that a reconnection does not emit it twice. */
  #seen: string | null | undefined;
  #failures = 0;

  constructor(options: CouchMappingSourceOptions) {
    const url = new URL(options.url);
    const password = decodeURIComponent(url.password);
    this.#secrets = [password, url.password].filter((s) => s.length > 0);
    this.#user = decodeURIComponent(url.username);
    url.password = '';
    this.description = `${url.href.replace(/\/$/, '')}/${options.db}/${options.docId}`;
    this.#couch = nano({ url: options.url });
    this.#db = options.db;
    this.#docId = options.docId;
    this.#log = options.logger.child({ mappingSource: this.description });
    this.#heartbeatMs = options.heartbeatMs ?? 10_000;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#backoff = options.backoff ?? { initialMs: 1_000, maxMs: 30_000 };
  }

  get connected(): boolean {
    return this.#connected;
  }

  async start(onUpdate: (update: MappingUpdate) => void, onError: (error: Error) => void): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const emit = (update: MappingUpdate) => {
      const key = update.document === null ? null : update.revision;
      if (!this.#running || key === this.#seen) return;
      this.#seen = key;
      onUpdate(update);
    };
    this.#loop = this.#follow(emit, onError);
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#connected = false;
    this.#abort?.abort();
    clearTimeout(this.#timer);
    this.#wake?.();
    await this.#loop;
  }

  get(): Promise<MappingUpdate | null> {
    return this.#fetch(AbortSignal.timeout(this.#timeoutMs));
  }

  async put(document: Record<string, unknown>): Promise<string> {
    let created = false;
    let retried = false;
    for (;;) {
      try {
        const current = await this.#fetch(AbortSignal.timeout(this.#timeoutMs));
        const { _rev: _ignored, ...rest } = document;
        const body = { ...rest, _id: this.#docId, ...(current ? { _rev: current.revision } : {}) };
        const reply = await this.#request('write', { db: this.#db, doc: this.#docId, method: 'PUT', body });
        return String(reply.rev);
      } catch (err) {
        const status = (err as CouchSourceError).statusCode;
        if (status === 404 && !created) {
          created = true;
          await this.#request('create database for', { db: this.#db, method: 'PUT' }).catch((e: CouchSourceError) => {
            if (e.statusCode !== 412) throw e; // 412: someone else created it meanwhile
          });
        } else if (status === 409 && !retried) {
          retried = true; // written by someone else between our GET and PUT: once more with the fresh _rev
        } else throw err;
      }
    }
  }

  async #follow(emit: (update: MappingUpdate) => void, onError: (error: Error) => void): Promise<void> {
    while (this.#running) {
      try {
        if (!this.#connected) await this.#connect(emit);
        await this.#poll(emit);
        this.#failures = 0;
      } catch (err) {
        if (!this.#running) break;
        const failure = err as CouchSourceError;
        this.#connected = false;
        if (failure.statusCode === 400 && this.#since !== undefined) {
          // A since CouchDB does not know (malformed, or from before a restore): start over from the document.
          this.#log.warn({ err: failure.message }, 'CouchDB rejected the saved sequence; reading the document again');
          this.#since = undefined;
        }
        onError(failure);
        const cap = Math.min(this.#backoff.maxMs, this.#backoff.initialMs * 2 ** this.#failures++);
        await this.#sleep(cap / 2 + (Math.random() * cap) / 2);
      }
    }
  }

  /**
   * Checks that the database answers; when there is no sequence to resume from
   * (first start, or after a 400) also reads the document. The sequence is read
   * before the document, so that a change made between the two is replayed by
   * the feed rather than lost.
   */
  async #connect(emit: (update: MappingUpdate) => void): Promise<void> {
    this.#abort = new AbortController();
    const info = await this.#request('read database', { db: this.#db }, this.#abort.signal).catch((e: CouchSourceError) => {
      if (e.statusCode !== 404) throw e;
      emit({ revision: '', document: null });
      throw Object.assign(new Error(`CouchDB database ${this.description} does not exist yet; \`hub mapping put\` creates it`), {
        statusCode: 404,
      });
    });
    if (this.#since === undefined) {
      emit((await this.#fetch(this.#abort.signal)) ?? { revision: '', document: null });
      this.#since = String(info.update_seq);
    }
    this.#connected = true;
    this.#log.info({ since: this.#since }, 'following the mapping document in CouchDB');
  }

  /**
   * One long-poll. CouchDB keeps it open past `timeout` when `heartbeat` is set
   * (heartbeat overrides it) and pouchdb-server ignores `timeout`; nano buffers
   * the body, so heartbeats are invisible here. Hence our own deadline: the poll
   * is abandoned and issued again from the same `since` (nothing lost), and a
   * half-open connection is noticed within that time.
   */
  async #poll(emit: (update: MappingUpdate) => void): Promise<void> {
    const abort = new AbortController();
    this.#abort = abort;
    let expired = false;
    const deadline = setTimeout(() => {
      expired = true;
      abort.abort();
    }, this.#timeoutMs + 2 * this.#heartbeatMs);
    try {
      const qs = { feed: 'longpoll', since: this.#since, heartbeat: this.#heartbeatMs, timeout: this.#timeoutMs, filter: '_doc_ids', include_docs: true };
      const body = { doc_ids: [this.#docId] };
      const reply = await this.#request('follow', { db: this.#db, path: '_changes', method: 'POST', qs, body }, abort.signal);
      for (const change of reply?.results ?? []) {
        if (change.id !== this.#docId) continue;
        emit({ revision: String(change.doc?._rev ?? change.changes?.[0]?.rev), document: change.deleted ? null : change.doc });
      }
      if (reply?.last_seq !== undefined) this.#since = String(reply.last_seq);
    } catch (err) {
      if (!expired) throw err;
    } finally {
      clearTimeout(deadline);
    }
  }

  async #fetch(signal: AbortSignal): Promise<MappingUpdate | null> {
    try {
      const doc = await this.#request('read', { db: this.#db, doc: this.#docId }, signal);
      return { revision: String(doc._rev), document: doc };
    } catch (err) {
      if ((err as CouchSourceError).statusCode === 404) return null; // no such document (or database)
      throw err;
    }
  }

  async #request(what: string, request: RequestOptions, signal?: AbortSignal): Promise<any> {
    const withSignal: RequestOptions & { signal?: AbortSignal } = { ...request, signal };
    let reply: unknown;
    try {
      reply = await this.#couch.request(withSignal);
    } catch (err) {
      throw this.#failure(what, err);
    }
    // pouchdb-server types its JSON `text/plain`, which nano hands back as a string (other types as a Buffer).
    if (Buffer.isBuffer(reply)) reply = reply.toString('utf8');
    if (typeof reply !== 'string') return reply;
    return reply.trim() === '' ? null : JSON.parse(reply);
  }

  /** A fresh error, so that nothing of nano's (request headers, the URL) travels with it; the password scrubbed anyway. */
  #failure(what: string, err: unknown): CouchSourceError {
    const { statusCode, message } = err as { statusCode?: number; message?: string };
    // nano reports a refused or broken connection as "error happened in your connection. Reason: <cause>".
    const raw = message ?? String(err);
    const reason = raw.startsWith('error happened') ? `unreachable (${raw.replace(/^.*Reason: /, '')})` : raw;
    const text =
      statusCode === 401
        ? `CouchDB refused the credentials ${this.#user ? `of user "${this.#user}"` : '(none given)'} for ${this.description} (401 ${reason}); set an admin user and password in COUCHDB_URL`
        : `CouchDB: cannot ${what} ${this.description}: ${statusCode ? `${statusCode} ` : ''}${reason}`;
    const scrubbed = this.#secrets.reduce((out, secret) => out.split(secret).join('***'), text);
    return Object.assign(new Error(scrubbed), { statusCode });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
    });
  }
}
