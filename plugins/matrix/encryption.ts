/**
 * Fail closed on end-to-end encryption: the hub never sends plaintext into an
 * encrypted room (it encrypts there when MATRIX_CRYPTO_STORE is set, see
 * crypto/, and refuses otherwise). A room is checked by reading its
 * `m.room.encryption` state; only "not encrypted" is cached, briefly.
 */
import { PermanentError, RetryableError, type SecretRedactor } from 'notification-hub/plugin-api';
import { classifyError } from './classify-error.ts';
import type { MatrixApi } from './client.ts';
import { TtlMap } from './rooms.ts';

export class EncryptionGuard {
  private readonly api: MatrixApi;
  private readonly ttlMs: number;
  private readonly redactor: SecretRedactor;
  private readonly plain = new TtlMap<true>();

  constructor(api: MatrixApi, ttlMs: number, redactor: SecretRedactor) {
    this.api = api;
    this.ttlMs = ttlMs;
    this.redactor = redactor;
  }

  /**
   * Resolve when `roomId` is known not to be encrypted. Throws the SDK's own
   * M_FORBIDDEN and token errors untouched, PermanentError `encrypted_room`,
   * or RetryableError when it cannot tell.
   */
  async assertNotEncrypted(roomId: string, signal: AbortSignal): Promise<void> {
    if (this.plain.get(roomId)) return;
    try {
      await this.api.stateEvent(roomId, 'm.room.encryption', '', signal);
    } catch (err) {
      const errcode = (err as { errcode?: string }).errcode;
      if (errcode === 'M_NOT_FOUND') {
        this.plain.set(roomId, true, this.ttlMs);
        return;
      }
      // Not in the room (the caller may join), or a bad token (the operator's to fix, not a reason to wait).
      if (errcode === 'M_FORBIDDEN' || errcode === 'M_UNKNOWN_TOKEN' || errcode === 'M_MISSING_TOKEN') throw err;
      const classified = classifyError(err, `cannot tell whether room ${roomId} is end-to-end encrypted`, this.redactor);
      throw new RetryableError(classified.message, {
        code: classified.code,
        cause: classified.cause,
        retryAfterMs: 'retryAfterMs' in classified ? classified.retryAfterMs : undefined,
        rateLimited: 'rateLimited' in classified ? classified.rateLimited : false,
      });
    }
    throw new PermanentError(
      `room ${roomId} is end-to-end encrypted and this hub has no encryption configured; it will not send plaintext there`,
      { code: 'encrypted_room' },
    );
  }

  /**
   * The room's `m.room.encryption` content, or `undefined` when the
   * homeserver says there is none ("not found", the only answer that means
   * "not encrypted"). Throws like {@link assertNotEncrypted} otherwise.
   */
  async encryptionOf(roomId: string, signal: AbortSignal): Promise<Record<string, unknown> | undefined> {
    if (this.plain.get(roomId)) return undefined;
    try {
      return await this.api.stateEvent(roomId, 'm.room.encryption', '', signal);
    } catch (err) {
      const errcode = (err as { errcode?: string }).errcode;
      if (errcode === 'M_NOT_FOUND') {
        this.plain.set(roomId, true, this.ttlMs);
        return undefined;
      }
      if (errcode === 'M_FORBIDDEN' || errcode === 'M_UNKNOWN_TOKEN' || errcode === 'M_MISSING_TOKEN') throw err;
      const classified = classifyError(err, `cannot tell whether room ${roomId} is end-to-end encrypted`, this.redactor);
      throw new RetryableError(classified.message, {
        code: classified.code,
        cause: classified.cause,
        retryAfterMs: 'retryAfterMs' in classified ? classified.retryAfterMs : undefined,
        rateLimited: 'rateLimited' in classified ? classified.rateLimited : false,
      });
    }
  }

  forget(roomId: string): void {
    this.plain.delete(roomId);
  }
}
