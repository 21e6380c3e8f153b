/**
 * The few client-server calls the plugin makes: each one HTTP request on one
 * keep-alive undici pool, cancellable, answered with the JSON body or thrown
 * as an error shaped like matrix-js-sdk's (`errcode`, `httpStatus`, `data`,
 * `httpHeaders`; a network failure named `ConnectionError`), which
 * classify-error.ts reads by shape.
 *
 * Why not matrix-js-sdk's HTTP layer: the plugin uses none of the SDK's
 * high-level calls (they build local-echo events and room models, queue sends
 * in a scheduler that retries on its own, and take no abort signal; the hub's
 * runtime owns retries and timeouts), and loading the SDK for its request
 * wrapper cost every matrix worker about 28 MB and ~10 % of its CPU per send
 * (bench/). The SDK is loaded only by the end-to-end crypto
 * (crypto/engine.ts), whose client gets {@link MatrixApi.sdkOptions}.
 */
import { createRequire } from 'node:module';
import type { ICreateClientOpts } from 'matrix-js-sdk';
import { callSignal } from 'notification-hub/plugin-api';
import type { Dispatcher, Agent as UndiciAgent } from 'undici';
import type { MatrixSettings } from './settings.ts';

// Only undici's HTTP client, not its index: that loads fetch, WebSocket, the caches and the mocks as well
// (in a bare process 7–13 MB of RSS and 2.6 MB of heap). Internal paths, so undici is pinned (package.json).
const require = createRequire(import.meta.url);
const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
const { request } = require('undici/lib/api/index.js') as { request: (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData> };

const noop = () => {};
/** The SDK logs requests and token events; the hub logs outcomes itself, with secrets redacted. */
const silent: NonNullable<ICreateClientOpts['logger']> = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, getChild: () => silent };

const enc = encodeURIComponent;

type Headers = Record<string, string | string[] | undefined>;

function headerReader(headers: Headers): { get(name: string): string | null } {
  return {
    get(name) {
      const value = headers[name.toLowerCase()];
      return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
    },
  };
}

/** A refusal as matrix-js-sdk's MatrixError shapes it (errors.js): the errcode is its name, the JSON body its `data`. */
function answerError(url: string, status: number, headers: Headers, text: string): Error {
  const type = String(headers['content-type'] ?? '').split(';')[0]!.trim();
  let data: Record<string, unknown> | undefined;
  if (type === 'application/json' && text) {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) data = parsed as Record<string, unknown>;
    } catch {
      // Not JSON after all: an HTTP error without a Matrix body.
    }
  }
  const httpHeaders = headerReader(headers);
  if (!data) {
    const said = type === 'text/plain' && text ? `: ${text.slice(0, 500)}` : '';
    return Object.assign(new Error(`Server returned ${status} error${said}`), { name: 'HTTPError', httpStatus: status, httpHeaders });
  }
  const errcode = typeof data.errcode === 'string' ? data.errcode : undefined;
  const said = typeof data.error === 'string' ? data.error : 'Unknown message';
  return Object.assign(new Error(`MatrixError: [${status}] ${said} (${url})`), { name: errcode ?? 'Unknown error code', errcode, data, httpStatus: status, httpHeaders, url });
}

export type DirectRooms = Record<string, string[]>;

/** The parts of a `/sync` answer (sync.yaml) the watcher reads. */
export interface SyncEvent {
  event_id?: string;
  type: string;
  sender?: string;
  origin_server_ts?: number;
  content?: Record<string, unknown>;
}
export interface SyncResponse {
  next_batch: string;
  rooms?: {
    join?: Record<string, { timeline?: { events?: SyncEvent[]; limited?: boolean }; ephemeral?: { events?: SyncEvent[] } }>;
  };
}

export class MatrixApi {
  readonly userId: string;
  readonly #settings: MatrixSettings;
  /** The homeserver's origin, and the client API's path on it: a request's URL is not parsed again for every send. */
  readonly #origin: string;
  readonly #basePath: string;
  readonly #auth: Record<string, string>;
  readonly #json: Record<string, string>;
  readonly #agent = new Agent({ keepAliveTimeout: 30_000 });
  /** Each sync filter (a constant of its caller), URL-encoded once: at a sync per send, encoding it again was 1 KB of garbage each time. */
  readonly #encodedFilters = new Map<string, string>();

  constructor(settings: MatrixSettings) {
    this.userId = settings.userId;
    this.#settings = settings;
    const base = new URL(`${settings.homeserver.replace(/\/+$/, '')}/_matrix/client/v3`);
    this.#origin = base.origin;
    this.#basePath = base.pathname;
    this.#auth = { authorization: `Bearer ${settings.accessToken}` };
    this.#json = { ...this.#auth, 'content-type': 'application/json' };
  }

  private async request<T>(method: 'GET' | 'PUT' | 'POST', path: string, body: object | undefined, signal: AbortSignal, query?: string): Promise<T> {
    const target = `${this.#basePath}${path}${query ? `?${query}` : ''}`;
    let status: number;
    let headers: Headers;
    let text: string;
    try {
      ({ status, headers, text } = await this.#exchange(this.#origin, target, method, body ? this.#json : this.#auth, body ? JSON.stringify(body) : undefined, signal));
    } catch (err) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : err;
      const { name, message } = err as Error;
      if (name === 'AbortError' || name === 'TimeoutError') throw err;
      // Named as the SDK names it; the message keeps the network's reason (`connect ECONNREFUSED …`).
      throw Object.assign(new Error(message, { cause: err }), { name: 'ConnectionError' });
    }
    if (status < 200 || status >= 300) throw answerError(`${this.#origin}${target}`, status, headers, text);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** One request on this pool, its body read whole. */
  async #exchange(origin: string, path: string, method: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal | undefined): Promise<{ status: number; headers: Headers; text: string }> {
    const res = await request.call(this.#agent, { origin, path, method: method as 'GET', headers, ...(body === undefined ? {} : { body }), ...(signal ? { signal } : {}) });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  }

  /**
   * The options of a matrix-js-sdk client for the same bot and homeserver
   * (the crypto runs inside one), its requests on this pool: undici's
   * `request` answering the few members of a Response the SDK reads
   * (measured in bench/: global fetch cost 222 µs of CPU per send, this 83 µs),
   * its errors keeping the network reason that fetch hides behind "fetch failed".
   */
  sdkOptions(): ICreateClientOpts {
    const { homeserver, accessToken, userId, deviceId } = this.#settings;
    const fetchFn = (async (input: URL | string, init: RequestInit) => {
      const { origin, pathname, search } = typeof input === 'string' ? new URL(input) : input;
      const { status, headers, text } = await this.#exchange(origin, pathname + search, init.method ?? 'GET', init.headers as Record<string, string>, init.body as string | undefined, init.signal ?? undefined);
      return {
        ok: status >= 200 && status < 300,
        status,
        headers: headerReader(headers),
        text: async () => text,
        json: async () => JSON.parse(text) as unknown,
      };
    }) as unknown as typeof fetch;
    return { baseUrl: homeserver, accessToken, userId, deviceId, disableVoip: true, logger: silent, fetchFn };
  }

  async send(roomId: string, txnId: string, content: object, signal: AbortSignal, eventType = 'm.room.message'): Promise<string> {
    const path = `/rooms/${enc(roomId)}/send/${enc(eventType)}/${enc(txnId)}`;
    const res = await this.request<{ event_id: string }>('PUT', path, content, signal);
    return res.event_id;
  }

  /** The content of a state event; throws the SDK's error (M_NOT_FOUND when unset). */
  stateEvent(roomId: string, type: string, stateKey: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    return this.request('GET', `/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`, undefined, signal);
  }

  /** The room's current `m.room.member` events (rooms.yaml `/members`), for whom to share room keys with. */
  async members(roomId: string, signal: AbortSignal): Promise<Array<Record<string, unknown>>> {
    const res = await this.request<{ chunk: Array<Record<string, unknown>> }>('GET', `/rooms/${enc(roomId)}/members`, undefined, signal);
    return res.chunk;
  }

  async join(roomIdOrAlias: string, signal: AbortSignal): Promise<string> {
    const res = await this.request<{ room_id: string }>('POST', `/join/${enc(roomIdOrAlias)}`, {}, signal);
    return res.room_id;
  }

  async resolveAlias(alias: string, signal: AbortSignal): Promise<string> {
    const res = await this.request<{ room_id: string }>('GET', `/directory/room/${enc(alias)}`, undefined, signal);
    return res.room_id;
  }

  /** A direct room with `userId`, invited with the creator's power level. */
  async createDirectRoom(userId: string, signal: AbortSignal): Promise<string> {
    const body = { is_direct: true, invite: [userId], preset: 'trusted_private_chat' };
    const res = await this.request<{ room_id: string }>('POST', '/createRoom', body, signal);
    return res.room_id;
  }

  /** The bot's `m.direct` account data; `{}` when it has none. */
  async directRooms(signal: AbortSignal): Promise<DirectRooms> {
    try {
      return await this.request<DirectRooms>('GET', this.accountDataPath('m.direct'), undefined, signal);
    } catch (err) {
      if ((err as { errcode?: string }).errcode === 'M_NOT_FOUND') return {};
      throw err;
    }
  }

  async setDirectRooms(direct: DirectRooms, signal: AbortSignal): Promise<void> {
    await this.request('PUT', this.accountDataPath('m.direct'), direct, signal);
  }

  /**
   * One `/sync` (long-polled up to `timeoutMs`), with an inline filter; the
   * bot never appears online (`set_presence=offline`).
   */
  async sync(params: { since?: string; filter: string; timeoutMs: number }, signal: AbortSignal): Promise<SyncResponse> {
    let filter = this.#encodedFilters.get(params.filter);
    if (filter === undefined) this.#encodedFilters.set(params.filter, (filter = encodeURIComponent(params.filter)));
    const query = `filter=${filter}&timeout=${params.timeoutMs}&set_presence=offline${params.since ? `&since=${encodeURIComponent(params.since)}` : ''}`;
    // A long poll the server never answers is given up (at a sync per send, a signal and timer released with the sync).
    const call = callSignal([signal], { ms: params.timeoutMs + 30_000, reason: () => new DOMException('the homeserver did not answer the sync', 'TimeoutError') });
    try {
      return await this.request<SyncResponse>('GET', '/sync', undefined, call.signal, query);
    } finally {
      call.release();
    }
  }

  /** One event of a room (for its `origin_server_ts`). */
  event(roomId: string, eventId: string, signal: AbortSignal): Promise<SyncEvent> {
    return this.request('GET', `/rooms/${enc(roomId)}/event/${enc(eventId)}`, undefined, signal);
  }

  private accountDataPath(type: string): string {
    return `/user/${enc(this.userId)}/account_data/${enc(type)}`;
  }

  /** Ends every request still running. */
  close(): void {
    void this.#agent.destroy().catch(() => undefined);
  }
}
