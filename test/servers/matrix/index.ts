/**
 * A local Matrix homeserver for tests: the client-server endpoints a notifier
 * uses, over real HTTP on 127.0.0.1, checked against the official API files.
 *
 *     const hs = await startHomeserver();
 *     const bot = hs.registerUser('bot');
 *     const roomId = hs.createRoom(bot.userId, { alias: 'ops' });
 *     ... hs.messages(roomId) ...
 *     await hs.close(); // throws if any request or response broke the spec
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Fault, Faults, type RateLimit } from './faults.ts';
import { handler, type Hub, type RequestRecord } from './http.ts';
import { HomeserverState, type Membership, type Receipt, type ReceiptType, type StoredEvent } from './state.ts';

export type { Fault, RateLimit, RequestRecord, StoredEvent, Membership, Receipt, ReceiptType };

export interface HomeserverOptions {
  /** Default `hs.test`: ids look like `@bot:hs.test`. */
  serverName?: string;
  /** Wait this long before answering every request. */
  delayMs?: number;
}

export interface TestRoom {
  /** Alias localpart (`ops`) or full alias (`#ops:hs.test`). */
  alias?: string;
  /** Add `m.room.encryption` (megolm) to the initial state. */
  encrypted?: boolean;
  /** Users joined besides the creator. */
  members?: string[];
  /** Users invited (not joined). */
  invited?: string[];
  /** Join rule `public` (anyone may join) instead of `invite`. */
  public?: boolean;
  name?: string;
}

export interface Homeserver {
  url: string;
  serverName: string;
  registerUser(localpart: string, password?: string): { userId: string; accessToken: string; deviceId: string };
  createRoom(creatorUserId: string, options?: TestRoom): string;
  /** Invite `userId`, by default on behalf of the room's creator. */
  invite(roomId: string, userId: string, by?: string): void;
  join(roomIdOrAlias: string, userId: string): string;
  leave(roomId: string, userId: string): void;
  /** Point an alias (`#name:server`) at a room, or move it. */
  setAlias(alias: string, roomId: string): void;
  /** Every event of the room, state included, oldest first. */
  events(roomId: string): StoredEvent[];
  /** The `m.room.message` events of the room. */
  messages(roomId: string): StoredEvent[];
  membership(roomId: string, userId: string): Membership | undefined;
  members(roomId: string): Record<string, Membership>;
  rooms(): string[];
  /** Set a state event (by default on behalf of the room's creator), e.g. turn on encryption. */
  setState(roomId: string, type: string, content: Record<string, unknown>, stateKey?: string, sender?: string): void;
  /** The content of a state event, if set. */
  stateOf(roomId: string, type: string, stateKey?: string): Record<string, unknown> | undefined;
  accountData(userId: string, type: string): Record<string, unknown> | undefined;
  /** An event sent by a joined member (a reaction, a reply, a message), as `PUT /send` would make it; answers its id. */
  post(roomId: string, userId: string, type: string, content: Record<string, unknown>): string;
  /** A receipt of a joined member, as `POST /rooms/{roomId}/receipt/{receiptType}/{eventId}` would set it. */
  receipt(roomId: string, userId: string, eventId: string, type?: ReceiptType, threadId?: string): void;
  /** Every member's latest receipts in a room. */
  receipts(roomId: string): Receipt[];
  /** Every request so far: method, path, status, user. */
  requests(): RequestRecord[];
  /** Answer the next `n` requests (those whose `METHOD /path` matches `only`) with an error, or hold them unanswered. */
  failNext(n: number, fault: Fault, only?: RegExp): void;
  /** Forget the failures of `failNext` not taken yet: the next requests are answered normally. */
  clearFaults(): void;
  /** Answer every Nth send 429 M_LIMIT_EXCEEDED; `undefined` stops. */
  rateLimit(limit: RateLimit | undefined): void;
  /** Wait `ms` before answering every request (0: no delay). */
  delay(ms: number): void;
  specViolations(): string[];
  /** The violations so far, forgotten: for tests that provoke them on purpose. */
  takeSpecViolations(): string[];
  /** Throw, listing them, if any request or response broke the spec. */
  assertNoSpecViolations(): void;
  /** Stop listening, drop held requests; then throws like {@link assertNoSpecViolations}. */
  close(): Promise<void>;
}

export async function startHomeserver(options: HomeserverOptions = {}): Promise<Homeserver> {
  const serverName = options.serverName ?? 'hs.test';
  const hub: Hub = { state: new HomeserverState(serverName), faults: new Faults(), violations: [], requests: [], held: new Set() };
  hub.faults.delayMs = options.delayMs ?? 0;
  const { state, faults } = hub;
  const handle = handler(hub);
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      hub.violations.push(`${req.method} ${req.url}: the fake homeserver failed: ${String(err)}`);
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errcode: 'M_UNKNOWN', error: 'Internal server error' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const room = (roomId: string) => {
    const r = state.room(roomId);
    if (!r) throw new Error(`no room ${roomId}`);
    return r;
  };
  const creatorOf = (roomId: string) => String(room(roomId).state.get('m.room.create\0')?.content.creator);
  const assertNoSpecViolations = () => {
    if (hub.violations.length > 0) {
      throw new Error(`Matrix spec violations:\n- ${hub.violations.join('\n- ')}`);
    }
  };

  return {
    url: `http://127.0.0.1:${port}`,
    serverName,
    registerUser(localpart, password) {
      const s = state.registerUser(localpart, password);
      return { userId: s.userId, accessToken: s.accessToken, deviceId: s.deviceId };
    },
    createRoom(creator, o = {}) {
      const alias = o.alias?.startsWith('#') ? o.alias.slice(1).split(':')[0] : o.alias;
      const roomId = state.createRoom(creator, {
        preset: o.public ? 'public_chat' : 'private_chat',
        aliasLocalpart: alias,
        name: o.name,
        initialState: o.encrypted
          ? [{ type: 'm.room.encryption', content: { algorithm: 'm.megolm.v1.aes-sha2' } }]
          : [],
      });
      for (const user of o.members ?? []) state.setMembership(roomId, user, user, 'join');
      for (const user of o.invited ?? []) state.invite(roomId, creator, user);
      return roomId;
    },
    invite(roomId, userId, by) {
      state.invite(roomId, by ?? creatorOf(roomId), userId);
    },
    setState(roomId, type, content, stateKey = '', sender) {
      state.setState(room(roomId).roomId, sender ?? creatorOf(roomId), type, stateKey, content);
    },
    join: (roomIdOrAlias, userId) => state.join(roomIdOrAlias, userId),
    leave: (roomId, userId) => state.leave(roomId, userId),
    setAlias(alias, roomId) {
      state.aliases.set(alias, room(roomId).roomId);
    },
    events: (roomId) => [...room(roomId).timeline],
    messages: (roomId) => room(roomId).timeline.filter((e) => e.type === 'm.room.message'),
    membership: (roomId, userId) => state.membership(roomId, userId),
    members: (roomId) => Object.fromEntries(room(roomId).members),
    rooms: () => [...state.rooms.keys()],
    stateOf: (roomId, type, stateKey = '') => room(roomId).state.get(`${type}\0${stateKey}`)?.content,
    accountData: (userId, type) => state.accountData.get(userId)?.get(type),
    post: (roomId, userId, type, content) => state.post(userId, roomId, type, content).event_id,
    receipt(roomId, userId, eventId, type = 'm.read', threadId) {
      state.receipt(userId, roomId, type, eventId, threadId);
    },
    receipts: (roomId) => [...room(roomId).receipts.values()],
    requests: () => [...hub.requests],
    failNext: (n, fault, only) => faults.failNext(n, fault, only),
    clearFaults: () => faults.clear(),
    rateLimit: (limit) => faults.rateLimit(limit),
    delay(ms) {
      faults.delayMs = ms;
    },
    specViolations: () => [...hub.violations],
    takeSpecViolations: () => hub.violations.splice(0),
    assertNoSpecViolations,
    async close() {
      for (const res of hub.held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      assertNoSpecViolations();
    },
  };
}
