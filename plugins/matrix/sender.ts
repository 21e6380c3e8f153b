/** Delivers one notification into one Matrix room. */
import { hash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Acknowledgement,
  type ChannelSender,
  type Delivery,
  type DeliveryReceipt,
  PermanentError,
  type PluginContext,
  RetryableError,
  isPermanent,
  isRetryable,
} from 'notification-hub/plugin-api';
import { classifyError } from './classify-error.ts';
import { MatrixApi } from './client.ts';
import { MatrixCrypto } from './crypto/engine.ts';
import { EncryptionGuard } from './encryption.ts';
import { contentCache } from './message.ts';
import { RoomSync } from './room-sync.ts';
import { RoomResolver } from './rooms.ts';
import type { MatrixSettings } from './settings.ts';
import { EventTracker, type Tracked } from './tracking.ts';

/**
 * A permalink to an event (appendices, "matrix.to navigation"): the ids
 * URI-encoded, `via` the room's server (or the bot's, for a room id without one).
 */
export function permalink(roomId: string, eventId: string, botUserId: string): string {
  const id = roomId.includes(':') ? roomId : botUserId;
  const via = id.slice(id.indexOf(':') + 1);
  return `https://matrix.to/#/${encodeURIComponent(roomId)}/${encodeURIComponent(eventId)}?via=${encodeURIComponent(via)}`;
}

/**
 * The transaction id: derived from the delivery id, so that a retry — after a
 * timeout, a crash, a replay — is the same transaction and the homeserver
 * answers the first event instead of posting a second.
 */
export function txnIdFor(deliveryId: string): string {
  return `hub1.${hash('sha256', deliveryId, 'base64url')}`;
}

/** How long one delivery to an encrypted room waits for the crypto to run before it is put back to wait again (its deadline may end it sooner). */
const CRYPTO_WAIT_MS = 5000;

/** Resolves when `promise` settles, `signal` aborts or `ms` pass, whichever is first. */
async function settledOrAborted(promise: Promise<unknown>, signal: AbortSignal, ms: number): Promise<void> {
  const stop = new AbortController();
  const timer = sleep(ms, undefined, { signal: AbortSignal.any([signal, stop.signal]), ref: false }).catch(() => undefined);
  try {
    await Promise.race([promise, timer]);
  } finally {
    stop.abort();
  }
}

export function createMatrixSender(ctx: PluginContext<MatrixSettings>): ChannelSender {
  const { settings } = ctx;
  const api = new MatrixApi(settings);
  const rooms = new RoomResolver(api, ctx);
  const sync = new RoomSync(api, { syncTimeoutMs: settings.syncTimeoutMs }, ctx.logger);
  const guard = new EncryptionGuard(api, sync, settings.encryptionCheckTtlMs, ctx.redactor);
  const contentFor = contentCache(settings.msgtype);
  const { redactor } = ctx;
  const tracker = new EventTracker(ctx);
  const crypto = startCrypto();
  // With encryption configured the crypto starts the loop once it can read the answers; a crypto that failed leaves it to the rooms.
  if (!crypto) sync.start();
  else void crypto.started.then(() => crypto.state === 'failed' && sync.start());

  function startCrypto(): MatrixCrypto | undefined {
    if (!settings.cryptoStore || !settings.cryptoKey) return undefined;
    return new MatrixCrypto(api, sync, { storeDir: settings.cryptoStore, storeKey: settings.cryptoKey }, ctx.logger);
  }

  /** Remember the event when its message awaits an acknowledgement (an escalation), so that the watcher can map signs back to it. */
  async function track(roomId: string, eventId: string, delivery: Delivery): Promise<void> {
    if (!settings.watch || delivery.awaitsAcknowledgement === false || !ctx.awaitsAcknowledgement || !ctx.acknowledge) return;
    const { messageId } = delivery;
    const acknowledge = ctx.acknowledge;
    const awaits = ctx.awaitsAcknowledgement;
    try {
      if (!(await awaits(messageId))) return;
      await tracker.track(roomId, eventId, messageId, async (t: Tracked, ack: Acknowledgement) => acknowledge(t.messageId, ack));
    } catch (err) {
      // Sent, but not remembered: retry the delivery (the transaction id makes the homeserver answer the same event).
      throw new RetryableError(`sent to ${roomId} as ${eventId}, but could not remember it for read receipts: ${(err as Error).message}`, { code: 'tracking', cause: err });
    }
  }

  /** Send, encrypted when the room is; never plaintext into an encrypted room (fail closed). */
  async function checkedSend(roomId: string, txnId: string, content: object, signal: AbortSignal): Promise<{ eventId: string; encrypted: boolean }> {
    if (!crypto) {
      await guard.assertNotEncrypted(roomId, signal);
      return { eventId: await api.send(roomId, txnId, content, signal), encrypted: false };
    }
    const encryption = await guard.encryptionOf(roomId, signal);
    if (!encryption) return { eventId: await api.send(roomId, txnId, content, signal), encrypted: false };
    if (crypto.state === 'waiting' || crypto.state === 'starting') {
      await settledOrAborted(crypto.started, signal, CRYPTO_WAIT_MS);
    }
    if (crypto.state === 'waiting' || crypto.state === 'starting') {
      // Waiting for this worker's own crypto is no fault of the delivery: not an attempt, so it is never dead-lettered for it.
      throw new RetryableError(`room ${roomId} is end-to-end encrypted and ${crypto.reason}; it waits for the crypto and will not send plaintext there`, {
        code: crypto.state === 'waiting' ? 'crypto_store_busy' : 'crypto_starting',
        retryAfterMs: 0,
        rateLimited: true,
      });
    }
    if (crypto.state !== 'running') {
      throw new PermanentError(`room ${roomId} is end-to-end encrypted and ${crypto.reason || 'encryption is not running'}; it will not send plaintext there`, { code: 'crypto_unavailable' });
    }
    let encrypted: { type: string; content: object };
    try {
      encrypted = await crypto.encrypt(roomId, encryption, content, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new RetryableError(redactor.redact(`room ${roomId} is end-to-end encrypted and ${(err as Error).message}; nothing was sent`), { code: 'key_share_failed', cause: err });
    }
    return { eventId: await api.send(roomId, txnId, encrypted.content, signal, encrypted.type), encrypted: true };
  }

  /** Join a room the bot is not in (this is how it accepts invites), or say in words why it cannot. */
  async function join(roomId: string, label: string, signal: AbortSignal): Promise<void> {
    try {
      await api.join(roomId, signal);
    } catch (err) {
      const classified = classifyError(err, `joining ${label}`, redactor);
      const { errcode, data } = err as { errcode?: string; data?: { error?: string } };
      if (isRetryable(classified) || errcode === 'M_UNKNOWN_TOKEN' || errcode === 'M_MISSING_TOKEN') throw classified;
      const said = `${errcode ?? classified.code}${data?.error ? `: ${data.error}` : ''}`;
      throw new PermanentError(
        redactor.redact(`the bot ${settings.userId} is not in room ${label} and cannot join it: invite it (the homeserver said ${said})`),
        { code: 'not_in_room', cause: classified },
      );
    }
  }

  return {
    async deliver(delivery: Delivery, signal: AbortSignal): Promise<DeliveryReceipt> {
      const content = contentFor(delivery.message);
      const txnId = txnIdFor(delivery.id);
      let label = delivery.target;
      try {
        const roomId = await rooms.roomFor(delivery.target, signal);
        if (roomId !== delivery.target) label = `${delivery.target} (${roomId})`;
        let sent: { eventId: string; encrypted: boolean };
        try {
          sent = await checkedSend(roomId, txnId, content, signal);
        } catch (err) {
          if ((err as { errcode?: string }).errcode !== 'M_FORBIDDEN') throw err;
          await join(roomId, label, signal);
          guard.forget(roomId);
          sent = await checkedSend(roomId, txnId, content, signal);
        }
        const { eventId } = sent;
        await track(roomId, eventId, delivery);
        const details: Record<string, string> = { roomId, link: permalink(roomId, eventId, settings.userId) };
        if (sent.encrypted) details.encrypted = 'm.megolm.v1.aes-sha2';
        return { peerId: eventId, details };
      } catch (err) {
        const classified = classifyError(err, `sending to ${label}`, redactor);
        // Best effort: a Redis hiccup here must not hide the real answer.
        if (isPermanent(classified)) await rooms.forget(delivery.target).catch(() => undefined);
        throw classified;
      }
    },
    async close() {
      await crypto?.close();
      await sync.close();
      api.close();
    },
  };
}
