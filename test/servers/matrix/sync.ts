/**
 * `GET /sync` for the fake homeserver (sync.yaml), with the filtering of the
 * client-server API's "Filtering" section applied to an inline filter
 * (`filter={...}`: the vendored files have no filter upload endpoint, so a
 * filter id is refused): `room.rooms`/`not_rooms`, `types`/`not_types`
 * (with `*` wildcards), `senders`/`not_senders`, the timeline `limit`
 * (`limited` and `prev_batch` when it cuts), `event_fields` (dot paths, `\`
 * escapes). Tokens are `s<N>`, a position in the server's one stream of
 * timeline events and receipts. An incremental sync waits up to `timeout` ms
 * for something new (long polling).
 *
 * Receipts come as one `m.receipt` ephemeral event per room:
 * `{ $event: { "m.read": { "@user": { ts, thread_id? } } } }`; a private
 * receipt (`m.read.private`) only to its own user.
 */
import { MatrixFault, type HomeserverState, type Room, type Session, type StoredEvent } from './state.ts';

type Json = Record<string, unknown>;

interface EventFilter {
  limit?: number;
  types?: string[];
  not_types?: string[];
  senders?: string[];
  not_senders?: string[];
  rooms?: string[];
  not_rooms?: string[];
}
interface Filter {
  event_fields?: string[];
  presence?: EventFilter;
  account_data?: EventFilter;
  room?: EventFilter & { timeline?: EventFilter; state?: EventFilter; ephemeral?: EventFilter; account_data?: EventFilter; include_leave?: boolean };
}

const FILTER_KEYS = new Set(['event_fields', 'event_format', 'presence', 'account_data', 'room']);
const ROOM_KEYS = new Set(['rooms', 'not_rooms', 'timeline', 'state', 'ephemeral', 'account_data', 'include_leave']);
const EVENT_FILTER_KEYS = new Set([
  'limit', 'types', 'not_types', 'senders', 'not_senders', 'rooms', 'not_rooms',
  'contains_url', 'lazy_load_members', 'include_redundant_members', 'unread_thread_notifications',
]);
const DEFAULT_TIMELINE_LIMIT = 10;

/** Parse the `filter` query parameter; client mistakes a real server would silently ignore are reported. */
export function parseFilter(raw: string | null, report: (problem: string) => void): Filter {
  if (raw === null) return {};
  if (!raw.trimStart().startsWith('{')) throw new MatrixFault(400, 'M_INVALID_PARAM', `Unknown filter ID ${raw}; pass the filter inline as JSON`);
  let filter: unknown;
  try {
    filter = JSON.parse(raw);
  } catch {
    throw new MatrixFault(400, 'M_BAD_JSON', 'filter is not valid JSON');
  }
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) throw new MatrixFault(400, 'M_BAD_JSON', 'filter must be a JSON object');
  const unknown = (where: string, value: unknown, known: Set<string>) => {
    if (typeof value !== 'object' || value === null) return report(`filter${where} must be an object`);
    for (const key of Object.keys(value)) if (!known.has(key)) report(`filter${where} has an unknown key ${JSON.stringify(key)}`);
  };
  const f = filter as Filter;
  unknown('', f, FILTER_KEYS);
  for (const key of ['presence', 'account_data'] as const) if (f[key] !== undefined) unknown(`.${key}`, f[key], EVENT_FILTER_KEYS);
  if (f.room !== undefined) {
    unknown('.room', f.room, ROOM_KEYS);
    for (const key of ['timeline', 'state', 'ephemeral', 'account_data'] as const) if (f.room[key] !== undefined) unknown(`.room.${key}`, f.room[key], EVENT_FILTER_KEYS);
    const limit = f.room.timeline?.limit;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) report('filter.room.timeline.limit must be an integer greater than 0');
  }
  return f;
}

const wildcard = (pattern: string): RegExp => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
const matchesAny = (patterns: string[] | undefined, value: string) => patterns?.some((p) => wildcard(p).test(value)) ?? false;

function passes(filter: EventFilter | undefined, type: string, sender?: string): boolean {
  if (!filter) return true;
  if (matchesAny(filter.not_types, type)) return false;
  if (filter.types && !matchesAny(filter.types, type)) return false;
  if (sender !== undefined && filter.not_senders?.includes(sender)) return false;
  if (sender !== undefined && filter.senders && !filter.senders.includes(sender)) return false;
  return true;
}

function roomAllowed(filter: Filter, roomId: string): boolean {
  if (filter.room?.not_rooms?.includes(roomId)) return false;
  return !filter.room?.rooms || filter.room.rooms.includes(roomId);
}

/** `event_fields`: dot paths, `\.` and `\\` escaped. */
function splitPath(path: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '\\' && i + 1 < path.length) current += path[++i];
    else if (c === '.') {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

/** The fields ClientEventWithoutRoomID requires are kept whatever `event_fields` says ("a server may include more fields"). */
const REQUIRED = ['event_id', 'type', 'sender', 'origin_server_ts'];

function pick(event: Json, fields: string[] | undefined): Json {
  if (!fields) return event;
  const picked = pickFields(event, fields);
  for (const key of REQUIRED) if (picked[key] === undefined && event[key] !== undefined) picked[key] = event[key];
  picked.content ??= {};
  return picked;
}

function pickFields(event: Json, fields: string[]): Json {
  const out: Json = {};
  for (const field of fields) {
    const path = splitPath(field);
    let from: unknown = event;
    for (const part of path) from = typeof from === 'object' && from !== null ? (from as Json)[part] : undefined;
    if (from === undefined) continue;
    let into = out;
    for (const part of path.slice(0, -1)) into = (into[part] ??= {}) as Json;
    into[path.at(-1)!] = from;
  }
  return out;
}

function clientEvent(hs: HomeserverState, event: StoredEvent, session: Session): Json {
  const { txn, room_id: _room, ...rest } = event;
  const unsigned: Json = { age: Math.max(0, Date.now() - event.origin_server_ts) };
  if (txn && event.sender === session.userId && hs.sentBy.get(event.event_id) === session.deviceId) unsigned.transaction_id = txn;
  return { ...rest, unsigned };
}

function parseSince(since: string | null): number | undefined {
  if (since === null) return undefined;
  const m = /^s(\d+)$/.exec(since);
  if (!m) throw new MatrixFault(400, 'M_INVALID_PARAM', `Invalid since token ${since}`);
  return Number(m[1]);
}

/** The /sync answer for `session` since stream position `since` (`undefined`: an initial sync). */
export function syncResponse(hs: HomeserverState, session: Session, since: number | undefined, filter: Filter): Json {
  const now = hs.stream;
  const join: Json = {};
  const invite: Json = {};
  const after = since ?? -1;
  for (const room of hs.rooms.values()) {
    if (!roomAllowed(filter, room.roomId)) continue;
    const membership = room.members.get(session.userId);
    if (membership === 'join') {
      const joined = joinedRoom(hs, room, session, after, since === undefined, filter);
      if (joined) join[room.roomId] = joined;
    } else if (membership === 'invite') {
      const member = room.state.get(`m.room.member\0${session.userId}`);
      if (member && (hs.positions.get(member.event_id) ?? 0) > after) {
        const stripped = [...room.state.values()]
          .filter((e) => ['m.room.create', 'm.room.name', 'm.room.join_rules'].includes(e.type) || e === member)
          .map((e) => ({ type: e.type, state_key: e.state_key ?? '', sender: e.sender, content: e.content }));
        invite[room.roomId] = { invite_state: { events: stripped } };
      }
    }
  }
  const response: Json = { next_batch: `s${now}` };
  const rooms: Json = {};
  if (Object.keys(join).length) rooms.join = join;
  if (Object.keys(invite).length) rooms.invite = invite;
  if (Object.keys(rooms).length) response.rooms = rooms;
  if (since === undefined && !isEverythingExcluded(filter.account_data)) {
    const data = hs.accountData.get(session.userId) ?? new Map<string, Json>();
    const events = [...data].filter(([type]) => passes(filter.account_data, type)).map(([type, content]) => ({ type, content }));
    if (events.length) response.account_data = { events };
  }
  return response;
}

function isEverythingExcluded(filter: EventFilter | undefined): boolean {
  return filter?.not_types?.includes('*') ?? false;
}

function joinedRoom(hs: HomeserverState, room: Room, session: Session, after: number, initial: boolean, filter: Filter): Json | undefined {
  const f = filter.room;
  const fields = filter.event_fields;
  const fresh = room.timeline.filter((e) => (hs.positions.get(e.event_id) ?? 0) > after && passes(f?.timeline, e.type, e.sender));
  const limit = f?.timeline?.limit ?? DEFAULT_TIMELINE_LIMIT;
  const events = fresh.slice(-limit);
  const limited = fresh.length > events.length;
  const receiptContent: Record<string, Record<string, Record<string, Json>>> = {};
  if (passes(f?.ephemeral, 'm.receipt')) {
    for (const r of room.receipts.values()) {
      if (r.stream <= after) continue;
      if (r.type === 'm.read.private' && r.userId !== session.userId) continue;
      if (f?.ephemeral?.not_senders?.includes(r.userId) || (f?.ephemeral?.senders && !f.ephemeral.senders.includes(r.userId))) continue;
      const byType = (receiptContent[r.eventId] ??= {});
      (byType[r.type] ??= {})[r.userId] = { ts: r.ts, ...(r.threadId ? { thread_id: r.threadId } : {}) };
    }
  }
  const ephemeral = Object.keys(receiptContent).length ? [{ type: 'm.receipt', content: receiptContent }] : [];
  const state = initial ? [...room.state.values()].filter((e) => passes(f?.state, e.type, e.sender)) : [];
  if (!initial && events.length === 0 && ephemeral.length === 0) return undefined;
  const first = events[0];
  return {
    timeline: {
      events: events.map((e) => pick(clientEvent(hs, e, session), fields)),
      limited,
      ...(first ? { prev_batch: `s${(hs.positions.get(first.event_id) ?? 1) - 1}` } : {}),
    },
    state: { events: state.map((e) => pick(clientEvent(hs, e, session), fields)) },
    ephemeral: { events: ephemeral },
  };
}

/** The query's `since` and `timeout`, checked. */
export function syncParams(query: URLSearchParams): { since: number | undefined; timeoutMs: number } {
  const timeout = query.get('timeout');
  if (timeout !== null && !/^\d+$/.test(timeout)) throw new MatrixFault(400, 'M_INVALID_PARAM', 'timeout must be an integer');
  return { since: parseSince(query.get('since')), timeoutMs: Math.min(Number(timeout ?? 0), 60_000) };
}
