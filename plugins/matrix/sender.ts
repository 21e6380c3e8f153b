/** Delivers one notification into one Matrix room. */
import { createHash } from 'node:crypto';
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
} from '../../core/plugin-api.ts';
import { classifyError, redact } from './classify-error.ts';
import { MatrixApi } from './client.ts';
import { EncryptionGuard } from './encryption.ts';
import { contentCache } from './message.ts';
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
  return `hub1.${createHash('sha256').update(deliveryId).digest('base64url')}`;
}

export function createMatrixSender(ctx: PluginContext<MatrixSettings>): ChannelSender {
  const { settings } = ctx;
  const api = new MatrixApi(settings);
  const rooms = new RoomResolver(api, ctx);
  const guard = new EncryptionGuard(api, settings.encryptionCheckTtlMs, settings.accessToken);
  const contentFor = contentCache();
  const secret = settings.accessToken;
  const tracker = new EventTracker(ctx);

  /** Remember the event when its message awaits an acknowledgement (an escalation), so that the watcher can map signs back to it. */
  async function track(roomId: string, eventId: string, messageId: string): Promise<void> {
    if (!settings.watch || !ctx.awaitsAcknowledgement || !ctx.acknowledge) return;
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

  async function checkedSend(roomId: string, txnId: string, content: object, signal: AbortSignal): Promise<string> {
    await guard.assertNotEncrypted(roomId, signal);
    return api.send(roomId, txnId, content, signal);
  }

  /** Join a room the bot is not in (this is how it accepts invites), or say in words why it cannot. */
  async function join(roomId: string, label: string, signal: AbortSignal): Promise<void> {
    try {
      await api.join(roomId, signal);
    } catch (err) {
      const classified = classifyError(err, `joining ${label}`, secret);
      const { errcode, data } = err as { errcode?: string; data?: { error?: string } };
      if (isRetryable(classified) || errcode === 'M_UNKNOWN_TOKEN' || errcode === 'M_MISSING_TOKEN') throw classified;
      const said = `${errcode ?? classified.code}${data?.error ? `: ${data.error}` : ''}`;
      throw new PermanentError(
        redact(`the bot ${settings.userId} is not in room ${label} and cannot join it: invite it (the homeserver said ${said})`, secret),
        { code: 'not_in_room', cause: classified },
      );
    }
  }

  return {
    async deliver(delivery: Delivery, signal: AbortSignal): Promise<DeliveryReceipt> {
      const content = contentFor(delivery.message, settings.msgtype);
      const txnId = txnIdFor(delivery.id);
      let label = delivery.target;
      try {
        const roomId = await rooms.roomFor(delivery.target, signal);
        if (roomId !== delivery.target) label = `${delivery.target} (${roomId})`;
        let eventId: string;
        try {
          eventId = await checkedSend(roomId, txnId, content, signal);
        } catch (err) {
          if ((err as { errcode?: string }).errcode !== 'M_FORBIDDEN') throw err;
          await join(roomId, label, signal);
          guard.forget(roomId);
          eventId = await checkedSend(roomId, txnId, content, signal);
        }
        await track(roomId, eventId, delivery.messageId);
        return { peerId: eventId, details: { roomId, link: permalink(roomId, eventId, settings.userId) } };
      } catch (err) {
        const classified = classifyError(err, `sending to ${label}`, secret);
        // Best effort: a Redis hiccup here must not hide the real answer.
        if (isPermanent(classified)) await rooms.forget(delivery.target).catch(() => undefined);
        throw classified;
      }
    },
    async close() {
      api.close();
    },
  };
}
