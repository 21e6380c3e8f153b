/**
 * A `/sync` answer → the signs of acknowledgement in it, room by room, in
 * the order the watcher applies them: first the timeline (positions,
 * reactions, replies), then the receipts. Pure, so it is table-tested.
 *
 * - A read receipt: an `m.receipt` ephemeral event, `m.read` or
 *   `m.read.private` (the server shows a private one to its own user only,
 *   so the bot sees others' when a server exposes them), from anyone but the bot.
 * - A reaction: `m.reaction` with an `m.annotation` relation to the event.
 * - A reply: an event whose `m.relates_to` has `m.in_reply_to`, or an
 *   `m.thread` relation whose root is the event.
 */
import type { Acknowledgement } from 'notification-hub/plugin-api';
import type { SyncEvent, SyncResponse } from './client.ts';

export interface RoomSignals {
  roomId: string;
  /** Timeline event ids in sync order, and their `origin_server_ts`. */
  timeline: string[];
  timestamps: Map<string, number>;
  relations: Array<{ eventId: string; by: string; how: Exclude<Acknowledgement['how'], 'read'> }>;
  receipts: Array<{ eventId: string; by: string; threadId?: string }>;
}

const RECEIPT_TYPES = ['m.read', 'm.read.private'];

export function syncSignals(response: SyncResponse, botUserId: string): RoomSignals[] {
  const out: RoomSignals[] = [];
  for (const [roomId, room] of Object.entries(response.rooms?.join ?? {})) {
    const signals: RoomSignals = { roomId, timeline: [], timestamps: new Map(), relations: [], receipts: [] };
    for (const event of room.timeline?.events ?? []) {
      if (typeof event.event_id !== 'string') continue;
      signals.timeline.push(event.event_id);
      if (typeof event.origin_server_ts === 'number') signals.timestamps.set(event.event_id, event.origin_server_ts);
      if (typeof event.sender !== 'string' || event.sender === botUserId) continue;
      for (const relation of relationsOf(event)) signals.relations.push({ ...relation, by: event.sender });
    }
    for (const event of room.ephemeral?.events ?? []) {
      if (event.type !== 'm.receipt' || !isObject(event.content)) continue;
      for (const [eventId, byType] of Object.entries(event.content)) {
        if (!isObject(byType)) continue;
        for (const type of RECEIPT_TYPES) {
          const users = byType[type];
          if (!isObject(users)) continue;
          for (const [user, receipt] of Object.entries(users)) {
            if (user === botUserId) continue;
            const threadId = isObject(receipt) && typeof receipt.thread_id === 'string' ? receipt.thread_id : undefined;
            signals.receipts.push({ eventId, by: user, ...(threadId ? { threadId } : {}) });
          }
        }
      }
    }
    if (signals.timeline.length || signals.receipts.length) out.push(signals);
  }
  return out;
}

function relationsOf(event: SyncEvent): Array<{ eventId: string; how: 'reaction' | 'reply' }> {
  const relates = event.content?.['m.relates_to'];
  if (!isObject(relates)) return [];
  const out: Array<{ eventId: string; how: 'reaction' | 'reply' }> = [];
  const target = typeof relates.event_id === 'string' ? relates.event_id : undefined;
  if (event.type === 'm.reaction' && relates.rel_type === 'm.annotation' && target) out.push({ eventId: target, how: 'reaction' });
  if (relates.rel_type === 'm.thread' && target) out.push({ eventId: target, how: 'reply' });
  const inReplyTo = relates['m.in_reply_to'];
  if (isObject(inReplyTo) && typeof inReplyTo.event_id === 'string' && inReplyTo.event_id !== target) out.push({ eventId: inReplyTo.event_id, how: 'reply' });
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
