/**
 * What the fake homeserver knows: users and their sessions, rooms with their
 * state, membership and timeline, aliases, account data and transaction ids.
 * Membership rules follow the spec closely enough for a notifier: only joined
 * members send, read state and invite; a join needs an invite or a public room.
 */
import { randomBytes } from 'node:crypto';

export type Membership = 'join' | 'invite' | 'leave' | 'ban';
type Content = Record<string, unknown>;

export interface StoredEvent {
  event_id: string;
  room_id: string;
  type: string;
  state_key?: string;
  sender: string;
  content: Content;
  origin_server_ts: number;
  /** The transaction id the client sent it with (`/send` only). */
  txn?: string;
}

export interface Session { userId: string; deviceId: string; accessToken: string }

export type ReceiptType = 'm.read' | 'm.read.private';

/** A user's latest receipt of one type (and thread) in a room. */
export interface Receipt {
  userId: string;
  type: ReceiptType;
  eventId: string;
  threadId?: string;
  ts: number;
  /** Its position in the server's stream: /sync reports receipts newer than `since`. */
  stream: number;
}

export interface Room {
  roomId: string;
  members: Map<string, Membership>;
  state: Map<string, StoredEvent>;
  timeline: StoredEvent[];
  /** `userId\0type\0threadId` → the user's latest receipt. */
  receipts: Map<string, Receipt>;
  /** Per-room account data of each user (`m.fully_read`). */
  accountData: Map<string, Map<string, Content>>;
}

export interface NewRoom {
  preset?: 'private_chat' | 'public_chat' | 'trusted_private_chat';
  visibility?: 'public' | 'private';
  aliasLocalpart?: string;
  name?: string;
  topic?: string;
  invite?: string[];
  isDirect?: boolean;
  initialState?: Array<{ type: string; state_key?: string; content: Content }>;
}

/** A Matrix error the HTTP layer turns into `{errcode, error}` with this status. */
export class MatrixFault extends Error {
  readonly status: number;
  readonly errcode: string;
  constructor(status: number, errcode: string, message: string) {
    super(message);
    this.status = status;
    this.errcode = errcode;
  }
}

const opaque = (bytes = 12) => randomBytes(bytes).toString('base64url');
const letters = (n: number) => Array.from(randomBytes(n), (b) => String.fromCharCode(65 + (b % 26) + (b & 32))).join('');

export class HomeserverState {
  readonly serverName: string;
  readonly users = new Map<string, { password: string }>();
  readonly sessions = new Map<string, Session>();
  readonly rooms = new Map<string, Room>();
  readonly aliases = new Map<string, string>();
  readonly accountData = new Map<string, Map<string, Content>>();
  /** `deviceId\0roomId\0eventType\0txnId` → event id: the spec scopes transaction ids to a device and an endpoint. */
  readonly txns = new Map<string, string>();
  /** The stream position of every change /sync reports (timeline events, receipts); `s<N>` tokens name one. */
  stream = 0;
  /** Event id → its stream position. */
  readonly positions = new Map<string, number>();
  /** Event id → the device that sent it (for `unsigned.transaction_id`). */
  readonly sentBy = new Map<string, string>();
  readonly #waiters = new Set<() => void>();

  constructor(serverName: string) {
    this.serverName = serverName;
  }

  registerUser(localpart: string, password = `pw-${localpart}`): Session {
    const userId = `@${localpart}:${this.serverName}`;
    if (this.users.has(userId)) throw new MatrixFault(400, 'M_USER_IN_USE', 'User ID already taken.');
    this.users.set(userId, { password });
    return this.login(userId, password);
  }

  login(userId: string, password: string, deviceId = letters(10)): Session {
    if (this.users.get(userId)?.password !== password) throw new MatrixFault(403, 'M_FORBIDDEN', 'Invalid username or password');
    for (const [token, s] of this.sessions) if (s.userId === userId && s.deviceId === deviceId) this.sessions.delete(token);
    const session = { userId, deviceId, accessToken: `syt_${opaque(24)}` };
    this.sessions.set(session.accessToken, session);
    return session;
  }

  room(roomId: string): Room | undefined {
    return this.rooms.get(roomId);
  }

  membership(roomId: string, userId: string): Membership | undefined {
    return this.rooms.get(roomId)?.members.get(userId);
  }

  /** The room a joined member may act in; unknown rooms answer like rooms one is not in, as Synapse does. */
  joinedRoom(roomId: string, userId: string): Room {
    const room = this.rooms.get(roomId);
    if (!room || room.members.get(userId) !== 'join') {
      throw new MatrixFault(403, 'M_FORBIDDEN', `User ${userId} not in room ${roomId}`);
    }
    return room;
  }

  createRoom(creator: string, opts: NewRoom = {}): string {
    const alias = opts.aliasLocalpart === undefined ? undefined : `#${opts.aliasLocalpart}:${this.serverName}`;
    if (alias && this.aliases.has(alias)) throw new MatrixFault(400, 'M_ROOM_IN_USE', 'Room alias already taken');
    const roomId = `!${letters(18)}:${this.serverName}`;
    this.rooms.set(roomId, { roomId, members: new Map(), state: new Map(), timeline: [], receipts: new Map(), accountData: new Map() });
    const preset = opts.preset ?? (opts.visibility === 'public' ? 'public_chat' : 'private_chat');
    this.setState(roomId, creator, 'm.room.create', '', { room_version: '11', creator });
    this.setMembership(roomId, creator, creator, 'join');
    this.setState(roomId, creator, 'm.room.power_levels', '', { users: { [creator]: 100 }, users_default: 0 });
    if (alias) {
      this.aliases.set(alias, roomId);
      this.setState(roomId, creator, 'm.room.canonical_alias', '', { alias });
    }
    this.setState(roomId, creator, 'm.room.join_rules', '', { join_rule: preset === 'public_chat' ? 'public' : 'invite' });
    this.setState(roomId, creator, 'm.room.history_visibility', '', { history_visibility: 'shared' });
    for (const s of opts.initialState ?? []) this.setState(roomId, creator, s.type, s.state_key ?? '', s.content);
    if (opts.name !== undefined) this.setState(roomId, creator, 'm.room.name', '', { name: opts.name });
    if (opts.topic !== undefined) this.setState(roomId, creator, 'm.room.topic', '', { topic: opts.topic });
    for (const invitee of opts.invite ?? []) {
      this.setMembership(roomId, creator, invitee, 'invite', opts.isDirect ? { is_direct: true } : {});
    }
    return roomId;
  }

  setState(roomId: string, sender: string, type: string, stateKey: string, content: Content): StoredEvent {
    const event = this.append(roomId, { type, state_key: stateKey, sender, content });
    this.rooms.get(roomId)?.state.set(`${type}\0${stateKey}`, event);
    return event;
  }

  setMembership(roomId: string, sender: string, userId: string, membership: Membership, extra: Content = {}): void {
    this.setState(roomId, sender, 'm.room.member', userId, { membership, ...extra });
    this.rooms.get(roomId)?.members.set(userId, membership);
  }

  invite(roomId: string, inviter: string, invitee: string): void {
    this.joinedRoom(roomId, inviter);
    const current = this.membership(roomId, invitee);
    if (current === 'ban') throw new MatrixFault(403, 'M_FORBIDDEN', `${invitee} is banned from the room`);
    if (current === 'join') throw new MatrixFault(403, 'M_FORBIDDEN', `${invitee} is already in the room.`);
    if (current !== 'invite') this.setMembership(roomId, inviter, invitee, 'invite');
  }

  /** Join by room id or alias; answers the room id. */
  join(roomIdOrAlias: string, userId: string): string {
    const roomId = roomIdOrAlias.startsWith('#') ? this.aliases.get(roomIdOrAlias) : roomIdOrAlias;
    const room = roomId ? this.rooms.get(roomId) : undefined;
    if (!roomId || !room) throw new MatrixFault(404, 'M_NOT_FOUND', `No known servers for ${roomIdOrAlias}`);
    const current = room.members.get(userId);
    if (current === 'join') return roomId;
    if (current === 'ban') throw new MatrixFault(403, 'M_FORBIDDEN', 'You are banned from this room');
    const rule = room.state.get('m.room.join_rules\0')?.content.join_rule;
    if (current !== 'invite' && rule !== 'public') throw new MatrixFault(403, 'M_FORBIDDEN', 'You are not invited to this room.');
    this.setMembership(roomId, userId, userId, 'join');
    return roomId;
  }

  leave(roomId: string, userId: string): void {
    if (this.membership(roomId, userId)) this.setMembership(roomId, userId, userId, 'leave');
  }

  /** `PUT /send`: idempotent per device, room, event type and transaction id. */
  send(session: Session, roomId: string, type: string, txnId: string, content: Content): string {
    const key = [session.deviceId, roomId, type, txnId].join('\0');
    const previous = this.txns.get(key);
    if (previous) return previous;
    this.joinedRoom(roomId, session.userId);
    const event = this.append(roomId, { type, sender: session.userId, content, txn: txnId });
    this.txns.set(key, event.event_id);
    this.sentBy.set(event.event_id, session.deviceId);
    return event.event_id;
  }

  /** An event sent by a joined member without a transaction (test helpers: a person reacting or replying). */
  post(userId: string, roomId: string, type: string, content: Content): StoredEvent {
    this.joinedRoom(roomId, userId);
    return this.append(roomId, { type, sender: userId, content });
  }

  /** `POST /rooms/{roomId}/receipt/{receiptType}/{eventId}` (receipts.yaml): a receipt replaces the user's previous one of its type and thread. */
  receipt(userId: string, roomId: string, type: ReceiptType | 'm.fully_read', eventId: string, threadId?: string): void {
    const room = this.joinedRoom(roomId, userId);
    if (!room.timeline.some((e) => e.event_id === eventId)) throw new MatrixFault(404, 'M_NOT_FOUND', `Event ${eventId} not found in ${roomId}`);
    if (threadId !== undefined && (threadId === '' || type === 'm.fully_read')) {
      throw new MatrixFault(400, 'M_INVALID_PARAM', threadId === '' ? 'thread_id field must be a non-empty string' : 'thread_id is not allowed for m.fully_read');
    }
    if (type === 'm.fully_read') {
      let data = room.accountData.get(userId);
      if (!data) room.accountData.set(userId, (data = new Map()));
      data.set('m.fully_read', { event_id: eventId });
      return;
    }
    const receipt: Receipt = { userId, type, eventId, ts: Date.now(), stream: ++this.stream, ...(threadId ? { threadId } : {}) };
    room.receipts.set([userId, type, threadId ?? ''].join('\0'), receipt);
    this.#notify();
  }

  /** Resolves once something newer than stream position `since` happened, after `timeoutMs`, or when `signal` aborts. */
  async changedSince(since: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.stream > since || timeoutMs <= 0 || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const check = () => {
        if (this.stream > since) done();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#waiters.add(check);
      signal.addEventListener('abort', done);
    });
  }

  /** A new stream position for a change outside rooms (to-device messages, device lists); wakes long polls. */
  advance(): number {
    ++this.stream;
    this.#notify();
    return this.stream;
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  joinedRooms(userId: string): string[] {
    return [...this.rooms.values()].filter((r) => r.members.get(userId) === 'join').map((r) => r.roomId);
  }

  private append(roomId: string, event: Omit<StoredEvent, 'event_id' | 'room_id' | 'origin_server_ts'>): StoredEvent {
    const room = this.rooms.get(roomId);
    if (!room) throw new MatrixFault(404, 'M_NOT_FOUND', `Unknown room ${roomId}`);
    const stored = { event_id: `$${opaque(32)}`, room_id: roomId, origin_server_ts: Date.now(), ...event };
    room.timeline.push(stored);
    this.positions.set(stored.event_id, ++this.stream);
    this.#notify();
    return stored;
  }
}
