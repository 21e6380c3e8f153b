/**
 * The client-server endpoints the fake homeserver implements. Paths are the
 * spec's templates (`data/api/client-server/*.yaml`) with their base path, so
 * that each route finds its operation for spec checking.
 */
import { type HomeserverState, MatrixFault, type NewRoom, type ReceiptType, type Session } from './state.ts';
import { e2eeRoutes, e2eeSync } from './e2ee.ts';
import { parseFilter, syncParams, syncResponse } from './sync.ts';

export interface Request {
  session: Session | undefined;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
  /** Record a client mistake that the spec files cannot catch (e.g. a malformed `m.direct`). */
  report(problem: string): void;
  /** Aborted when the client goes away (a long poll stops waiting). */
  signal: AbortSignal;
}
export interface Reply { status: number; body: Record<string, unknown>; headers?: Record<string, string> }
export interface Route {
  method: string;
  path: string;
  /** The spec template when it differs from `path` (the optional trailing `/{stateKey}`). */
  spec?: string;
  /** Used when the spec has no operation for the route (account data). */
  auth?: 'required';
  handle(hs: HomeserverState, req: Request): Reply | Promise<Reply>;
}

const V3 = '/_matrix/client/v3';
const ok = (body: Record<string, unknown> = {}): Reply => ({ status: 200, body });
/** Routes with `auth: 'required'` (from the spec) always have a session. */
const me = (req: Request): Session => req.session as Session;
const MAX_EVENT_BYTES = 65_536;

export const routes: Route[] = [
  {
    method: 'GET', path: '/_matrix/client/versions',
    handle: () => ok({ versions: ['v1.1', 'v1.5', 'v1.10', 'v1.12'], unstable_features: {} }),
  },
  { method: 'GET', path: `${V3}/login`, handle: () => ok({ flows: [{ type: 'm.login.password' }] }) },
  {
    method: 'POST', path: `${V3}/login`,
    handle: (hs, { body }) => {
      if (body.type !== 'm.login.password') throw new MatrixFault(400, 'M_UNKNOWN', 'Bad login type.');
      const identifier = body.identifier as { user?: string } | undefined;
      const user = identifier?.user ?? (typeof body.user === 'string' ? body.user : '');
      const userId = user.startsWith('@') ? user : `@${user}:${hs.serverName}`;
      const deviceId = typeof body.device_id === 'string' ? body.device_id : undefined;
      const s = hs.login(userId, String(body.password ?? ''), deviceId);
      return ok({ user_id: s.userId, access_token: s.accessToken, device_id: s.deviceId });
    },
  },
  {
    method: 'GET', path: `${V3}/account/whoami`,
    handle: (_hs, req) => ok({ user_id: me(req).userId, device_id: me(req).deviceId, is_guest: false }),
  },
  {
    method: 'PUT', path: `${V3}/rooms/{roomId}/send/{eventType}/{txnId}`,
    handle: (hs, req) => {
      const { roomId = '', eventType = '', txnId = '' } = req.params;
      if (Buffer.byteLength(JSON.stringify(req.body)) > MAX_EVENT_BYTES) throw new MatrixFault(413, 'M_TOO_LARGE', 'Event too large');
      return ok({ event_id: hs.send(me(req), roomId, eventType, txnId, req.body) });
    },
  },
  ...['/{stateKey}', ''].map((tail): Route => ({
    method: 'GET', path: `${V3}/rooms/{roomId}/state/{eventType}${tail}`,
    spec: `${V3}/rooms/{roomId}/state/{eventType}/{stateKey}`,
    handle: (hs, req) => {
      const { roomId = '', eventType = '', stateKey = '' } = req.params;
      const event = hs.joinedRoom(roomId, me(req).userId).state.get(`${eventType}\0${stateKey}`);
      if (!event) throw new MatrixFault(404, 'M_NOT_FOUND', 'Event not found.');
      if (req.query.get('format') !== 'event') return ok(event.content);
      // (The spec's 200 schema is `oneOf: [object, state event]`, which a whole event matches twice: expect a violation.)
      const { txn: _txn, ...full } = event;
      return ok(full);
    },
  })),
  {
    method: 'POST', path: `${V3}/join/{roomIdOrAlias}`,
    handle: (hs, req) => ok({ room_id: hs.join(req.params.roomIdOrAlias ?? '', me(req).userId) }),
  },
  {
    method: 'POST', path: `${V3}/rooms/{roomId}/join`,
    handle: (hs, req) => ok({ room_id: hs.join(req.params.roomId ?? '', me(req).userId) }),
  },
  {
    method: 'GET', path: `${V3}/directory/room/{roomAlias}`,
    handle: (hs, req) => {
      const alias = req.params.roomAlias ?? '';
      const roomId = hs.aliases.get(alias);
      if (!roomId) throw new MatrixFault(404, 'M_NOT_FOUND', `Room alias ${alias} not found.`);
      return ok({ room_id: roomId, servers: [hs.serverName] });
    },
  },
  {
    method: 'POST', path: `${V3}/createRoom`,
    handle: (hs, req) => {
      const b = req.body as NewRoom & Record<string, unknown>;
      const alias = b.room_alias_name as string | undefined;
      if (alias !== undefined && /[:\s]/.test(alias)) throw new MatrixFault(400, 'M_INVALID_PARAM', 'Invalid characters in room alias');
      const roomId = hs.createRoom(me(req).userId, {
        preset: b.preset, visibility: b.visibility, aliasLocalpart: alias,
        name: b.name, topic: b.topic, invite: b.invite, isDirect: b.is_direct === true,
        initialState: b.initial_state as NewRoom['initialState'],
      });
      return ok({ room_id: roomId });
    },
  },
  {
    method: 'POST', path: `${V3}/rooms/{roomId}/invite`,
    handle: (hs, req) => {
      hs.invite(req.params.roomId ?? '', me(req).userId, String(req.body.user_id));
      return ok();
    },
  },
  {
    method: 'GET', path: `${V3}/user/{userId}/account_data/{type}`, auth: 'required',
    handle: (hs, req) => {
      const content = ownAccountData(hs, req).get(req.params.type ?? '');
      if (!content) throw new MatrixFault(404, 'M_NOT_FOUND', 'Account data not found');
      return ok(content);
    },
  },
  {
    method: 'PUT', path: `${V3}/user/{userId}/account_data/{type}`, auth: 'required',
    handle: (hs, req) => {
      if (req.params.type === 'm.direct') checkDirect(req);
      ownAccountData(hs, req).set(req.params.type ?? '', req.body);
      return ok();
    },
  },
  {
    method: 'GET', path: `${V3}/rooms/{roomId}/joined_members`,
    handle: (hs, req) => {
      const room = hs.joinedRoom(req.params.roomId ?? '', me(req).userId);
      const joined = [...room.members].filter(([, m]) => m === 'join').map(([user]) => [user, {}]);
      return ok({ joined: Object.fromEntries(joined) });
    },
  },
  { method: 'GET', path: `${V3}/joined_rooms`, handle: (hs, req) => ok({ joined_rooms: hs.joinedRooms(me(req).userId) }) },
  {
    method: 'GET', path: `${V3}/sync`,
    handle: async (hs, req) => {
      const filter = parseFilter(req.query.get('filter'), req.report);
      const { since, timeoutMs } = syncParams(req.query);
      if (since !== undefined && since > hs.stream) throw new MatrixFault(400, 'M_INVALID_PARAM', `since token s${since} is from the future`);
      if (since !== undefined) {
        // Long poll: wait for something this user would see (or the timeout); anything else happening just re-checks.
        const deadline = Date.now() + timeoutMs;
        let seen = since;
        for (;;) {
          const response = syncResponse(hs, me(req), since, filter);
          const e2ee = e2eeSync(hs, me(req), since);
          const left = deadline - Date.now();
          if (response.rooms || e2ee.news || left <= 0 || req.signal.aborted) return ok({ ...response, ...e2ee.part });
          seen = hs.stream;
          await hs.changedSince(seen, left, req.signal);
        }
      }
      return ok({ ...syncResponse(hs, me(req), since, filter), ...e2eeSync(hs, me(req), since).part });
    },
  },
  {
    method: 'POST', path: `${V3}/rooms/{roomId}/receipt/{receiptType}/{eventId}`,
    handle: (hs, req) => {
      const { roomId = '', receiptType = '', eventId = '' } = req.params;
      if (!['m.read', 'm.read.private', 'm.fully_read'].includes(receiptType)) throw new MatrixFault(400, 'M_INVALID_PARAM', `Unknown receipt type ${receiptType}`);
      const threadId = req.body.thread_id;
      if (threadId !== undefined && typeof threadId !== 'string') throw new MatrixFault(400, 'M_INVALID_PARAM', 'thread_id field must be a non-empty string');
      hs.receipt(me(req).userId, roomId, receiptType as ReceiptType | 'm.fully_read', eventId, threadId);
      return ok();
    },
  },
  {
    method: 'GET', path: `${V3}/rooms/{roomId}/event/{eventId}`,
    handle: (hs, req) => {
      const { roomId = '', eventId = '' } = req.params;
      const room = hs.room(roomId);
      const event = room?.members.get(me(req).userId) === 'join' ? room.timeline.find((e) => e.event_id === eventId) : undefined;
      if (!event) throw new MatrixFault(404, 'M_NOT_FOUND', 'Event not found.');
      const { txn: _txn, ...full } = event;
      return ok(full);
    },
  },
  ...e2eeRoutes,
];

function ownAccountData(hs: HomeserverState, req: Request): Map<string, Record<string, unknown>> {
  const userId = me(req).userId;
  if (req.params.userId !== userId) throw new MatrixFault(403, 'M_FORBIDDEN', 'Cannot access account data for other users.');
  let data = hs.accountData.get(userId);
  if (!data) hs.accountData.set(userId, (data = new Map()));
  return data;
}

/** `m.direct` is a map from user id to a list of room ids (client-server API, "Direct Messaging"); its schema is not vendored. */
function checkDirect(req: Request): void {
  for (const [user, rooms] of Object.entries(req.body)) {
    const fine = user.startsWith('@') && Array.isArray(rooms) && rooms.every((r) => typeof r === 'string' && r.startsWith('!'));
    if (!fine) req.report(`m.direct: ${JSON.stringify(user)} must map a user id to a list of room ids`);
  }
}
