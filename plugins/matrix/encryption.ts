/**
 * Fail closed on end-to-end encryption: the hub never sends plaintext into an
 * encrypted room (it encrypts there when MATRIX_CRYPTO_STORE is set, see
 * crypto/, and refuses otherwise). What a room is comes from the sender's
 * `/sync` loop (room-sync.ts): "encrypted" at once and for good, "not
 * encrypted" from an answer to a sync asked after the send began (or, with
 * `encryptionCheckTtlMs`, one at most that old). A room the loop does not
 * follow yet, or before its first answer, is read with a GET of its
 * `m.room.encryption` state.
 */
import { PermanentError, RetryableError, type SecretRedactor } from 'notification-hub/plugin-api';
import { classifyError } from './classify-error.ts';
import type { MatrixApi } from './client.ts';
import type { RoomSync } from './room-sync.ts';

type Json = Record<string, unknown>;

export class EncryptionGuard {
  private readonly api: MatrixApi;
  private readonly sync: RoomSync;
  private readonly ttlMs: number;
  private readonly redactor: SecretRedactor;

  constructor(api: MatrixApi, sync: RoomSync, ttlMs: number, redactor: SecretRedactor) {
    this.api = api;
    this.sync = sync;
    this.ttlMs = ttlMs;
    this.redactor = redactor;
  }

  /**
   * Resolve when `roomId` is known not to be encrypted. Throws the SDK's own
   * M_FORBIDDEN and token errors untouched, PermanentError `encrypted_room`,
   * or RetryableError when it cannot tell.
   */
  async assertNotEncrypted(roomId: string, signal: AbortSignal): Promise<void> {
    if (!(await this.encryptionOf(roomId, signal))) return;
    throw new PermanentError(
      `room ${roomId} is end-to-end encrypted and this hub has no encryption configured; it will not send plaintext there`,
      { code: 'encrypted_room' },
    );
  }

  /**
   * The room's `m.room.encryption` content, or `undefined` when it is not
   * encrypted (for a GET: the homeserver says "not found", the only answer
   * that means that). Throws like {@link assertNotEncrypted} otherwise.
   */
  async encryptionOf(roomId: string, signal: AbortSignal): Promise<Json | undefined> {
    if (this.sync.started) {
      const known = this.sync.encryptionOf(roomId);
      if (known) return known;
      if (known === null) {
        try {
          await this.sync.fresh(signal, this.ttlMs);
        } catch (err) {
          throw this.cannotTell(roomId, err);
        }
        const now = this.sync.encryptionOf(roomId);
        if (now) return now;
        if (now === null) return undefined;
      }
    }
    let content: Json | undefined;
    try {
      content = await this.api.stateEvent(roomId, 'm.room.encryption', '', signal);
    } catch (err) {
      if ((err as { errcode?: string }).errcode !== 'M_NOT_FOUND') throw this.cannotTell(roomId, err);
    }
    this.sync.learn(roomId, content ?? null);
    return content;
  }

  /** Not in the room (the caller may join) and a bad token (the operator's to fix, not a reason to wait) go as they are; anything else may pass. */
  private cannotTell(roomId: string, err: unknown): unknown {
    const errcode = (err as { errcode?: string }).errcode;
    if (errcode === 'M_FORBIDDEN' || errcode === 'M_UNKNOWN_TOKEN' || errcode === 'M_MISSING_TOKEN') return err;
    const classified = classifyError(err, `cannot tell whether room ${roomId} is end-to-end encrypted`, this.redactor);
    return new RetryableError(classified.message, {
      code: classified.code,
      cause: classified.cause,
      retryAfterMs: 'retryAfterMs' in classified ? classified.retryAfterMs : undefined,
      rateLimited: 'rateLimited' in classified ? classified.rateLimited : false,
    });
  }

  forget(roomId: string): void {
    this.sync.forget(roomId);
  }
}
