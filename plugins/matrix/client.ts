/**
 * The few client-server calls the plugin makes, through matrix-js-sdk.
 *
 * Why `client.http.authedRequest` and not `sendEvent`/`joinRoom`: the SDK's
 * high-level calls build local-echo events and room models, queue sends in a
 * `MatrixScheduler` that retries them on its own (createClient always adds
 * one), and take no abort signal. The hub's runtime owns retries and
 * timeouts, so every call here is one HTTP request, cancellable, with the
 * SDK's authentication and error parsing (`MatrixError`) and nothing else.
 * `new MatrixClient` (not `createClient`) so that no scheduler, store or
 * crypto store is made at all. Connections are kept alive by fetch's pool.
 */
import { ClientPrefix, type ICreateClientOpts, MatrixClient, Method } from 'matrix-js-sdk';
import { Agent, request } from 'undici';
import type { MatrixSettings } from './settings.ts';

const noop = () => {};
/** The SDK logs requests and token events; the hub logs outcomes itself, with secrets redacted. */
const silent: NonNullable<ICreateClientOpts['logger']> = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, getChild: () => silent };

const enc = encodeURIComponent;

/**
 * The SDK's `fetchFn`: undici's `request` on one keep-alive pool, answering
 * the few members of a Response the SDK reads. Measured in bench/: global
 * fetch cost 222 µs of CPU per send, this 83 µs. Its errors keep the network
 * reason (`connect ECONNREFUSED …`), which fetch hides behind "fetch failed".
 */
const agent = new Agent({ keepAliveTimeout: 30_000 });
const explainedFetch = (async (input: URL | string, init: RequestInit) => {
  const res = await request(input, {
    dispatcher: agent,
    method: (init.method ?? 'GET') as 'GET',
    headers: init.headers as Record<string, string>,
    body: init.body as string | undefined,
    signal: init.signal ?? undefined,
  });
  const text = await res.body.text();
  const header = (name: string) => {
    const value = res.headers[name.toLowerCase()];
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
  };
  return {
    ok: res.statusCode >= 200 && res.statusCode < 300,
    status: res.statusCode,
    headers: { get: header },
    text: async () => text,
    json: async () => JSON.parse(text) as unknown,
  };
}) as unknown as typeof fetch;

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
  private readonly client: MatrixClient;

  constructor(settings: MatrixSettings) {
    this.userId = settings.userId;
    this.client = new MatrixClient({
      baseUrl: settings.homeserver,
      accessToken: settings.accessToken,
      userId: settings.userId,
      deviceId: settings.deviceId,
      disableVoip: true,
      logger: silent,
      fetchFn: explainedFetch,
    });
  }

  private request<T>(method: Method, path: string, body: Record<string, unknown> | undefined, signal: AbortSignal): Promise<T> {
    // `priority` is the DOM's RequestInit field, which Node's types lack: the SDK's type then wants it spelled out.
    const opts = { abortSignal: signal, prefix: ClientPrefix.V3, priority: undefined };
    return this.client.http.authedRequest<T>(method, path, undefined, body, opts);
  }

  /** The SDK client itself, for the end-to-end crypto (plugins/matrix/crypto), which runs inside it. */
  get sdk(): MatrixClient {
    return this.client;
  }

  async send(roomId: string, txnId: string, content: object, signal: AbortSignal, eventType = 'm.room.message'): Promise<string> {
    const path = `/rooms/${enc(roomId)}/send/${enc(eventType)}/${enc(txnId)}`;
    const res = await this.request<{ event_id: string }>(Method.Put, path, content as Record<string, unknown>, signal);
    return res.event_id;
  }

  /** The content of a state event; throws the SDK's error (M_NOT_FOUND when unset). */
  stateEvent(roomId: string, type: string, stateKey: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    return this.request(Method.Get, `/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`, undefined, signal);
  }

  /** The room's current `m.room.member` events (rooms.yaml `/members`), for whom to share room keys with. */
  async members(roomId: string, signal: AbortSignal): Promise<Array<Record<string, unknown>>> {
    const res = await this.request<{ chunk: Array<Record<string, unknown>> }>(Method.Get, `/rooms/${enc(roomId)}/members`, undefined, signal);
    return res.chunk;
  }

  async join(roomIdOrAlias: string, signal: AbortSignal): Promise<string> {
    const res = await this.request<{ room_id: string }>(Method.Post, `/join/${enc(roomIdOrAlias)}`, {}, signal);
    return res.room_id;
  }

  async resolveAlias(alias: string, signal: AbortSignal): Promise<string> {
    const res = await this.request<{ room_id: string }>(Method.Get, `/directory/room/${enc(alias)}`, undefined, signal);
    return res.room_id;
  }

  /** A direct room with `userId`, invited with the creator's power level. */
  async createDirectRoom(userId: string, signal: AbortSignal): Promise<string> {
    const body = { is_direct: true, invite: [userId], preset: 'trusted_private_chat' };
    const res = await this.request<{ room_id: string }>(Method.Post, '/createRoom', body, signal);
    return res.room_id;
  }

  /** The bot's `m.direct` account data; `{}` when it has none. */
  async directRooms(signal: AbortSignal): Promise<DirectRooms> {
    try {
      return await this.request<DirectRooms>(Method.Get, this.accountDataPath('m.direct'), undefined, signal);
    } catch (err) {
      if ((err as { errcode?: string }).errcode === 'M_NOT_FOUND') return {};
      throw err;
    }
  }

  async setDirectRooms(direct: DirectRooms, signal: AbortSignal): Promise<void> {
    await this.request(Method.Put, this.accountDataPath('m.direct'), direct, signal);
  }

  /**
   * One `/sync` (long-polled up to `timeoutMs`), with an inline filter; the
   * bot never appears online (`set_presence=offline`).
   */
  sync(params: { since?: string; filter: string; timeoutMs: number }, signal: AbortSignal): Promise<SyncResponse> {
    const query: Record<string, string> = { filter: params.filter, timeout: String(params.timeoutMs), set_presence: 'offline' };
    if (params.since) query.since = params.since;
    // A long poll the server never answers is given up (the SDK's own localTimeoutMs leaves a timer behind that holds the process).
    const abortSignal = AbortSignal.any([signal, AbortSignal.timeout(params.timeoutMs + 30_000)]);
    const opts = { abortSignal, prefix: ClientPrefix.V3, priority: undefined };
    return this.client.http.authedRequest<SyncResponse>(Method.Get, '/sync', query, undefined, opts);
  }

  /** One event of a room (for its `origin_server_ts`). */
  event(roomId: string, eventId: string, signal: AbortSignal): Promise<SyncEvent> {
    return this.request(Method.Get, `/rooms/${enc(roomId)}/event/${enc(eventId)}`, undefined, signal);
  }

  private accountDataPath(type: string): string {
    return `/user/${enc(this.userId)}/account_data/${enc(type)}`;
  }

  close(): void {
    this.client.stopClient();
    this.client.http.abort();
  }
}
