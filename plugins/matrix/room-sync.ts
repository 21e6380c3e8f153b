/**
 * The sender's one `/sync` loop: it learns which joined rooms are end-to-end
 * encrypted (a room can be switched on to encryption, never off, so
 * "encrypted" is kept for good), and feeds the crypto (crypto/engine.ts) the
 * to-device messages, device list changes and key counts of every answer.
 *
 * No window for plaintext: a plaintext send waits for an answer to a sync
 * *asked after the send began* ({@link RoomSync.fresh}): what the room was
 * then, as a GET of its state before the send would tell, but one sync
 * answers every send waiting at that moment. With the crypto listening it
 * long-polls between sends (a poll in flight is cut for a send); without, it
 * syncs only when a send waits. A room the loop does not know yet (joined since, or never) is
 * read with a GET by the caller and then followed here ({@link RoomSync.learn}).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { callSignal } from 'notification-hub/plugin-api';
import type { MatrixApi } from './client.ts';

type Json = Record<string, unknown>;
export type SyncAnswer = Json & { next_batch: string };

/** Rooms' `m.room.encryption` state (in the state and the timeline), and nothing else of rooms. */
export const ROOM_SYNC_FILTER = JSON.stringify({
  event_fields: ['type', 'state_key', 'content', 'event_id', 'sender', 'origin_server_ts'],
  presence: { not_types: ['*'] },
  account_data: { not_types: ['*'] },
  room: {
    timeline: { limit: 50, types: ['m.room.encryption'] },
    state: { types: ['m.room.encryption'] },
    ephemeral: { not_types: ['*'] },
    account_data: { not_types: ['*'] },
    include_leave: false,
  },
});

const BACKOFF_MS = [1000, 2000, 5000, 10_000, 30_000];

interface Waiter {
  after: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class RoomSync {
  /** Joined rooms followed: the `m.room.encryption` content, or `null` when not encrypted. */
  private readonly rooms = new Map<string, Json | null>();
  private readonly listeners: Array<(answer: SyncAnswer) => Promise<void>> = [];
  private readonly stop = new AbortController();
  private waiters: Waiter[] = [];
  private poll: AbortController | undefined;
  private wake: (() => void) | undefined;
  private since: string | undefined;
  private failure: { error: unknown; until: number } | undefined;
  private running: Promise<void> | undefined;
  /** When the request of the last answer applied was asked (performance.now()); -1 before the first. */
  private knownAt = -1;
  /** Resolves after the first answer has been applied (and fed to the listeners). */
  readonly ready: Promise<void>;
  private markReady!: () => void;

  private readonly api: MatrixApi;
  private readonly options: { syncTimeoutMs: number };
  private readonly logger: Logger;

  constructor(api: MatrixApi, options: { syncTimeoutMs: number }, logger: Logger) {
    this.api = api;
    this.options = options;
    this.logger = logger;
    this.ready = new Promise((resolve) => (this.markReady = resolve));
  }

  /** Every answer goes through `listener` before the position moves past it (the crypto's to-device messages). */
  onAnswer(listener: (answer: SyncAnswer) => Promise<void>): void {
    this.listeners.push(listener);
  }

  start(): void {
    this.running ??= this.loop();
  }

  get started(): boolean {
    return this.knownAt >= 0;
  }

  /**
   * Resolves once an answer to a sync asked after this call is applied;
   * rejects with the sync's error when that sync fails (or the last one
   * failed moments ago: callers retry, the loop backs off).
   */
  fresh(signal: AbortSignal, maxAgeMs = 0): Promise<void> {
    const now = performance.now();
    if (maxAgeMs > 0 && this.knownAt >= 0 && now - this.knownAt <= maxAgeMs) return Promise.resolve();
    if (this.failure && now < this.failure.until) return Promise.reject(this.failure.error);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { after: now, resolve, reject };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      waiter.resolve = () => (signal.removeEventListener('abort', onAbort), resolve());
      waiter.reject = (err) => (signal.removeEventListener('abort', onAbort), reject(err));
      this.waiters.push(waiter);
      this.poll?.abort();
      this.wake?.();
    });
  }

  /** What the loop knows of `roomId`: its encryption content, `null` (not encrypted), or `undefined` (not followed). */
  encryptionOf(roomId: string): Json | null | undefined {
    return this.rooms.get(roomId);
  }

  /** Follow a room read with a GET (asked after the last answer applied, so the next answer brings any change since). */
  learn(roomId: string, encryption: Json | null): void {
    if (this.rooms.get(roomId)) return;
    this.rooms.set(roomId, encryption);
  }

  forget(roomId: string): void {
    if (this.rooms.get(roomId) === null) this.rooms.delete(roomId);
  }

  private apply(answer: SyncAnswer): void {
    const rooms = answer.rooms as { join?: Record<string, Json>; leave?: Record<string, Json> } | undefined;
    for (const [roomId, room] of Object.entries(rooms?.join ?? {})) {
      const events = [
        ...(((room.state as Json | undefined)?.events as Json[] | undefined) ?? []),
        ...(((room.timeline as Json | undefined)?.events as Json[] | undefined) ?? []),
      ];
      let encryption = this.rooms.get(roomId) ?? null;
      for (const event of events) {
        if (event.type === 'm.room.encryption' && event.state_key === '' && typeof event.content === 'object' && event.content !== null) {
          encryption ??= event.content as Json;
        }
      }
      // An initial sync lists every joined room; an incremental one only those with news.
      if (encryption || this.since === undefined || this.rooms.has(roomId)) this.rooms.set(roomId, encryption);
    }
    for (const roomId of Object.keys(rooms?.leave ?? {})) this.forget(roomId);
  }

  private async loop(): Promise<void> {
    for (let failures = 0; !this.stop.signal.aborted; ) {
      // Without a listener nothing needs the long poll: the loop syncs when a send waits (a poll cut for
      // a send costs its connection), from the position it had; the answer brings every change since.
      if (this.listeners.length === 0 && this.since !== undefined && this.waiters.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const urgent = this.waiters.length > 0 || this.since === undefined;
      const asked = performance.now();
      const poll = new AbortController();
      this.poll = urgent ? undefined : poll;
      const call = callSignal([this.stop.signal, poll.signal]);
      let answer: SyncAnswer;
      try {
        const query = { ...(this.since ? { since: this.since } : {}), filter: ROOM_SYNC_FILTER, timeoutMs: urgent ? 0 : this.options.syncTimeoutMs };
        answer = (await this.api.sync(query, call.signal)) as unknown as SyncAnswer;
        this.apply(answer);
        for (const listener of this.listeners) await listener(answer);
      } catch (err) {
        if (this.stop.signal.aborted) break;
        if (poll.signal.aborted) continue;
        const wait = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)]!;
        failures += 1;
        this.failure = { error: err, until: performance.now() + wait };
        this.settle(Number.POSITIVE_INFINITY, err);
        this.logger.warn({ err: (err as Error).message, retryInMs: wait }, `matrix: ${this.since === undefined ? 'the first sync' : 'sync'} failed; retrying`);
        await sleep(wait, undefined, { signal: this.stop.signal }).catch(() => undefined);
        continue;
      } finally {
        this.poll = undefined;
        call.release();
      }
      failures = 0;
      this.failure = undefined;
      this.since = answer.next_batch;
      this.knownAt = asked;
      this.markReady();
      this.settle(asked);
    }
    this.settle(Number.POSITIVE_INFINITY, new Error('the matrix sync stopped'));
  }

  /** Answer the waiters that came before `asked`. */
  private settle(asked: number, err?: unknown): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) {
      if (w.after > asked) this.waiters.push(w);
      else if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.wake?.();
    await this.running;
  }
}
