/**
 * End-to-end encryption for the matrix plugin: matrix-js-sdk's Rust crypto
 * (`initRustCrypto`, the bundled WebAssembly build) inside the plugin's own
 * MatrixClient, with a persistent store encrypted at rest.
 *
 * The bot is one device for its whole life (a fixed device id, its access
 * token reused). It reads what it needs from every answer of the sender's one
 * /sync loop (../room-sync.ts), before the loop moves past it: to-device
 * messages, device list changes and one-time key counts. Before each encrypted send the room's members are read afresh
 * from the homeserver, and room keys go to every device of every joined (or
 * invited, as history visibility says) member, verified or not.
 */
import { mkdirSync } from 'node:fs';
import type { MatrixClient, MatrixEvent, Room } from 'matrix-js-sdk';
import type { Logger } from 'pino';
import type { MatrixApi } from '../client.ts';
import type { RoomSync, SyncAnswer } from '../room-sync.ts';
import { type StoreLock, lockStore } from './store-lock.ts';

type Json = Record<string, unknown>;
/** The SDK's crypto backend, as far as this module drives it (the sync hooks are internal to the SDK's own sync loop). */
interface Backend {
  markAllTrackedUsersAsDirty(): Promise<void>;
  processSyncChanges(changes: { toDeviceEvents: object[]; deviceLists?: object; oneTimeKeysCounts?: Record<string, number>; unusedFallbackKeys?: Set<string> }): Promise<unknown>;
  onSyncCompleted(data: object): void;
  onCryptoEvent(room: Room, event: MatrixEvent): Promise<void>;
  encryptEvent(event: MatrixEvent, room: Room): Promise<void>;
  getOwnDeviceKeys(): Promise<{ ed25519: string; curve25519: string }>;
}

/** `waiting`: another live process owns the store; `starting`: this one owns it and gets ready. Both end on their own: deliveries wait for them. */
export type CryptoState = 'waiting' | 'starting' | 'running' | 'failed' | 'stopped';

export interface CryptoOptions {
  /** The folder of the store (MATRIX_CRYPTO_STORE). */
  storeDir: string;
  /** 32 bytes that encrypt the store at rest (MATRIX_CRYPTO_KEY, see store-key.ts). */
  storeKey: Uint8Array;
}

export class MatrixCrypto {
  state: CryptoState = 'starting';
  /** Why it is not running, in words (for refusals). */
  reason = 'end-to-end encryption is starting';
  /** Resolves once it is running, has failed for good, or was stopped. */
  readonly started: Promise<void>;
  private readonly api: MatrixApi;
  private readonly options: CryptoOptions;
  private readonly logger: Logger;
  private readonly rooms = new Map<string, Room>();
  private readonly stop = new AbortController();
  private backend: Backend | undefined;
  /** matrix-js-sdk and the client the crypto runs in: loaded by `start`, so that a worker without encryption never loads the SDK. */
  private sdk: typeof import('matrix-js-sdk') | undefined;
  private client: MatrixClient | undefined;
  private storeLock: StoreLock | undefined;
  /** Counters for metrics (the plugin API has no metrics registry yet). */
  readonly counts = { encryptedSends: 0, keyShareFailures: 0 };

  private readonly sync: RoomSync;

  /** Starts `sync` once the crypto can read its answers (before, to-device messages would be passed by and lost). */
  constructor(api: MatrixApi, sync: RoomSync, options: CryptoOptions, logger: Logger) {
    this.api = api;
    this.sync = sync;
    this.options = options;
    this.logger = logger;
    this.started = this.start().catch((err: unknown) => {
      this.storeLock?.release();
      this.storeLock = undefined;
      if (this.stop.signal.aborted) {
        this.state = 'stopped';
        return;
      }
      this.state = 'failed';
      this.reason = `end-to-end encryption failed to start: ${(err as Error).message}`;
      this.logger.error(this.reason);
    });
  }

  private async start(): Promise<void> {
    const { storeDir } = this.options;
    mkdirSync(storeDir, { recursive: true, mode: 0o700 });
    const askedAt = Date.now();
    this.storeLock = await lockStore(storeDir, this.stop.signal, (holder) => {
      this.state = 'waiting';
      this.reason = `its crypto store is in use by ${holder ? `process ${holder.pid} on ${holder.host}` : 'another process'} (one matrix worker per store); this worker takes it over when that one ends`;
      this.logger.warn({ store: storeDir, holder }, 'the crypto store is in use by another process; waiting to take it over');
    });
    if (this.state === 'waiting') this.logger.info({ store: storeDir, waitedMs: Date.now() - askedAt }, 'took over the crypto store');
    this.state = 'starting';
    this.reason = 'end-to-end encryption is starting';
    // Loaded only when encryption is configured: without MATRIX_CRYPTO_STORE the plugin loads nothing more than before.
    const { installIndexedDb } = await import('./indexeddb.ts');
    installIndexedDb(storeDir);
    this.sdk = await import('matrix-js-sdk');
    // `new MatrixClient`, not `createClient`: no scheduler or store is made, only the crypto.
    const client = new this.sdk.MatrixClient(this.api.sdkOptions());
    this.client = client;
    unrefLocalTimeouts(client.http as unknown as Http);
    await client.initRustCrypto({ cryptoDatabasePrefix: 'notification-hub', storageKey: this.options.storeKey });
    const backend = client.getCrypto() as unknown as Backend;
    // Devices added or changed while the hub was down: query every tracked user's devices again.
    await backend.markAllTrackedUsersAsDirty();
    this.backend = backend;
    this.sync.onAnswer((answer) => this.read(answer));
    this.sync.start();
    // The first answer (this device's keys uploaded, device lists learnt) comes before the first send; a homeserver not answering yet is waited for.
    this.reason = 'end-to-end encryption is starting (waiting for the first sync)';
    await Promise.race([this.sync.ready, new Promise((resolve) => this.stop.signal.addEventListener('abort', resolve, { once: true }))]);
    this.stop.signal.throwIfAborted();
    const keys = await backend.getOwnDeviceKeys();
    this.state = 'running';
    this.reason = '';
    this.logger.info({ deviceId: client.getDeviceId(), ed25519: keys.ed25519 }, 'end-to-end encryption running');
  }

  private async read(res: SyncAnswer): Promise<void> {
    const backend = this.backend;
    if (!backend) return;
    await backend.processSyncChanges({
      toDeviceEvents: ((res.to_device as Json | undefined)?.events as object[] | undefined) ?? [],
      deviceLists: res.device_lists as object | undefined,
      oneTimeKeysCounts: res.device_one_time_keys_count as Record<string, number> | undefined,
      unusedFallbackKeys: new Set((res.device_unused_fallback_key_types as string[] | undefined) ?? []),
    });
    backend.onSyncCompleted({});
  }

  /**
   * The room event `content` encrypted for `roomId` (whose `m.room.encryption`
   * content is `encryption`): `{ type: 'm.room.encrypted', content }`. Reads
   * the room's members first; throws when keys cannot be shared.
   */
  async encrypt(roomId: string, encryption: Json, content: object, signal: AbortSignal): Promise<{ type: string; content: Json }> {
    const { backend, client, sdk } = this;
    if (this.state !== 'running' || !backend || !client || !sdk) throw new Error(this.reason);
    const { MatrixEvent, Room } = sdk;
    const members = await this.api.members(roomId, signal);
    let room = this.rooms.get(roomId);
    const encEvent = new MatrixEvent({ type: 'm.room.encryption', state_key: '', content: encryption, room_id: roomId, event_id: `$encryption:${roomId}` });
    const memberEvents = members.map((m) => new MatrixEvent({ ...m, room_id: roomId }));
    if (!room) {
      room = new Room(roomId, client, this.api.userId);
      room.currentState.setStateEvents([encEvent, ...memberEvents]);
      await backend.onCryptoEvent(room, encEvent);
      this.rooms.set(roomId, room);
    } else {
      room.currentState.setStateEvents(memberEvents);
    }
    const event = new MatrixEvent({ type: 'm.room.message', content: content as Json, room_id: roomId, sender: this.api.userId });
    try {
      await backend.encryptEvent(event, room);
    } catch (err) {
      this.counts.keyShareFailures++;
      throw new Error(`could not share room keys for ${roomId}: ${(err as Error).message}`, { cause: err });
    }
    if (event.getWireType() !== 'm.room.encrypted') throw new Error(`the crypto did not encrypt the event for ${roomId}`);
    this.counts.encryptedSends++;
    return { type: event.getWireType(), content: event.getWireContent() as Json };
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.started;
    await this.sync.close();
    this.state = 'stopped';
    if (this.storeLock) {
      // The crypto lets go of the store (its IndexedDB connections) before another process may take it.
      this.client?.stopClient();
      this.storeLock.release();
      this.storeLock = undefined;
    }
  }
}

interface Http {
  authedRequest(method: unknown, path: unknown, query: unknown, body: unknown, opts?: { localTimeoutMs?: number; abortSignal?: AbortSignal }): Promise<unknown>;
}

/**
 * The crypto's requests carry the SDK's `localTimeoutMs` (60 s), a timer that
 * is never cleared and holds the process for a minute after its last request
 * (a hub asked to stop would wait for it): the same deadline as an unref'd
 * `AbortSignal.timeout` instead.
 */
function unrefLocalTimeouts(http: Http): void {
  const original = http.authedRequest.bind(http);
  http.authedRequest = (method, path, query, body, opts) => {
    if (opts?.localTimeoutMs === undefined) return original(method, path, query, body, opts);
    const { localTimeoutMs, ...rest } = opts;
    const deadline = AbortSignal.timeout(localTimeoutMs);
    return original(method, path, query, body, { ...rest, abortSignal: rest.abortSignal ? AbortSignal.any([rest.abortSignal, deadline]) : deadline });
  };
}
