/**
 * The end-to-end encryption endpoints (keys.yaml, to_device.yaml) and the
 * to_device / device_lists / device_one_time_keys_count parts of /sync:
 * storage and relay only, as a homeserver does. Like Synapse, device keys
 * once uploaded for a device cannot be replaced by different ones, and a
 * one-time key id cannot be reused with another key.
 */
import type { Reply, Request, Route } from './routes.ts';
import { type HomeserverState, MatrixFault, type Session } from './state.ts';

type Json = Record<string, unknown>;
const V3 = '/_matrix/client/v3';
const ok = (body: Json = {}): Reply => ({ status: 200, body });
const me = (req: Request): Session => req.session as Session;

interface ToDevice { stream: number; sender: string; type: string; content: Json }
interface DeviceStore {
  /** `userId\0deviceId` → signed device keys. */
  deviceKeys: Map<string, Json>;
  /** `userId\0deviceId` → key id (`signed_curve25519:AAAA`) → key. */
  oneTimeKeys: Map<string, Map<string, Json>>;
  fallbackKeys: Map<string, Map<string, Json>>;
  /** `userId\0deviceId` → queued to-device messages. */
  inbox: Map<string, ToDevice[]>;
  /** userId → stream position of its last device change. */
  changed: Map<string, number>;
  /** `deviceId\0txnId` already relayed. */
  txns: Set<string>;
}

const stores = new WeakMap<HomeserverState, DeviceStore>();
export function devices(hs: HomeserverState): DeviceStore {
  let s = stores.get(hs);
  if (!s) {
    s = { deviceKeys: new Map(), oneTimeKeys: new Map(), fallbackKeys: new Map(), inbox: new Map(), changed: new Map(), txns: new Set() };
    stores.set(hs, s);
  }
  return s;
}

const stable = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) =>
  x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Json).sort(([a], [b]) => a.localeCompare(b))) : x);

function counts(store: DeviceStore, key: string): Record<string, number> {
  const out: Record<string, number> = { signed_curve25519: 0 };
  for (const id of store.oneTimeKeys.get(key)?.keys() ?? []) {
    const alg = id.split(':')[0] ?? '';
    out[alg] = (out[alg] ?? 0) + 1;
  }
  return out;
}

/** Users sharing a joined room with `userId` (itself included). */
function sharesRoom(hs: HomeserverState, userId: string): Set<string> {
  const out = new Set<string>([userId]);
  for (const room of hs.rooms.values()) {
    if (room.members.get(userId) !== 'join') continue;
    for (const [u, m] of room.members) if (m === 'join') out.add(u);
  }
  return out;
}

export const e2eeRoutes: Route[] = [
  {
    // No server-side key backup here (key_backup.yaml): clients ask for one when their crypto starts.
    method: 'GET', path: `${V3}/room_keys/version`,
    handle: () => {
      throw new MatrixFault(404, 'M_NOT_FOUND', 'No current backup version');
    },
  },
  {
    // The room's members (rooms.yaml), which an encrypting client loads to know whom to share keys with.
    method: 'GET', path: `${V3}/rooms/{roomId}/members`,
    handle: (hs, req) => {
      const room = hs.joinedRoom(req.params.roomId ?? '', me(req).userId);
      const chunk = [...room.state.values()].filter((e) => e.type === 'm.room.member').map(({ txn: _txn, ...e }) => e);
      return ok({ chunk });
    },
  },
  {
    method: 'POST', path: `${V3}/keys/upload`,
    handle: (hs, req) => {
      const store = devices(hs);
      const s = me(req);
      const key = `${s.userId}\0${s.deviceId}`;
      const dk = req.body.device_keys as Json | undefined;
      if (dk) {
        if (dk.user_id !== s.userId || dk.device_id !== s.deviceId) throw new MatrixFault(400, 'M_INVALID_PARAM', 'device_keys are not for this device');
        const old = store.deviceKeys.get(key);
        const sameKeys = (a: Json, b: Json) => stable(a.keys) === stable(b.keys);
        if (old && !sameKeys(old, dk)) throw new MatrixFault(400, 'M_INVALID_PARAM', `Device key for ${s.deviceId} already exists and differs`);
        if (!old || stable(old) !== stable(dk)) {
          store.deviceKeys.set(key, dk);
          store.changed.set(s.userId, hs.advance());
        }
      }
      for (const [field, map] of [['one_time_keys', store.oneTimeKeys], ['fallback_keys', store.fallbackKeys]] as const) {
        const keys = req.body[field] as Json | undefined;
        if (!keys) continue;
        const mine = field === 'fallback_keys' ? new Map<string, Json>() : (map.get(key) ?? new Map<string, Json>());
        for (const [id, value] of Object.entries(keys)) {
          const prev = mine.get(id);
          if (prev && stable(prev) !== stable(value)) throw new MatrixFault(400, 'M_INVALID_PARAM', `One time key ${id} already exists`);
          mine.set(id, value as Json);
        }
        map.set(key, mine);
      }
      return ok({ one_time_key_counts: counts(store, key) });
    },
  },
  {
    method: 'POST', path: `${V3}/keys/query`,
    handle: (hs, req) => {
      const store = devices(hs);
      const wanted = (req.body.device_keys ?? {}) as Record<string, string[]>;
      const deviceKeys: Record<string, Record<string, Json>> = {};
      for (const [userId, ids] of Object.entries(wanted)) {
        const mine: Record<string, Json> = {};
        for (const [k, v] of store.deviceKeys) {
          const [u, d = ''] = k.split('\0');
          if (u === userId && (ids.length === 0 || ids.includes(d))) mine[d] = v;
        }
        deviceKeys[userId] = mine;
      }
      return ok({ device_keys: deviceKeys, failures: {} });
    },
  },
  {
    method: 'POST', path: `${V3}/keys/claim`,
    handle: (hs, req) => {
      const store = devices(hs);
      const wanted = (req.body.one_time_keys ?? {}) as Record<string, Record<string, string>>;
      const out: Record<string, Record<string, Json>> = {};
      for (const [userId, byDevice] of Object.entries(wanted)) {
        for (const [deviceId, algorithm] of Object.entries(byDevice)) {
          const key = `${userId}\0${deviceId}`;
          const pick = (map: Map<string, Map<string, Json>>, take: boolean) => {
            const keys = map.get(key);
            for (const [id, value] of keys ?? []) {
              if (!id.startsWith(`${algorithm}:`)) continue;
              if (take) keys?.delete(id);
              return { [id]: value };
            }
            return undefined;
          };
          const found = pick(store.oneTimeKeys, true) ?? pick(store.fallbackKeys, false);
          if (found) ((out[userId] ??= {})[deviceId] = found);
        }
      }
      return ok({ one_time_keys: out, failures: {} });
    },
  },
  {
    method: 'PUT', path: `${V3}/sendToDevice/{eventType}/{txnId}`,
    handle: (hs, req) => {
      const store = devices(hs);
      const s = me(req);
      const { eventType = '', txnId = '' } = req.params;
      const txn = `${s.userId}\0${s.deviceId}\0${txnId}`;
      if (store.txns.has(txn)) return ok({});
      store.txns.add(txn);
      const messages = (req.body.messages ?? {}) as Record<string, Record<string, Json>>;
      for (const [userId, byDevice] of Object.entries(messages)) {
        for (const [deviceId, content] of Object.entries(byDevice)) {
          const targets = deviceId === '*'
            ? [...store.deviceKeys.keys()].filter((k) => k.startsWith(`${userId}\0`))
            : [`${userId}\0${deviceId}`];
          for (const target of targets) {
            const list = store.inbox.get(target) ?? [];
            list.push({ stream: hs.advance(), sender: s.userId, type: eventType, content });
            store.inbox.set(target, list);
          }
        }
      }
      return ok({});
    },
  },
];

/**
 * The end-to-end parts of a /sync answer for `session` since `since`:
 * to-device messages not yet acknowledged (a sync with `since` past them
 * acknowledges and deletes them), device list changes, one-time key counts.
 * `undefined` keys are left out. `news` says whether any of it is new.
 */
export function e2eeSync(hs: HomeserverState, session: Session, since: number | undefined): { part: Json; news: boolean } {
  const store = devices(hs);
  const key = `${session.userId}\0${session.deviceId}`;
  const after = since ?? -1;
  const inbox = (store.inbox.get(key) ?? []).filter((m) => m.stream > after);
  store.inbox.set(key, inbox);
  const events = inbox.map(({ sender, type, content }) => ({ sender, type, content }));
  const changed = since === undefined
    ? []
    : [...sharesRoom(hs, session.userId)].filter((u) => (store.changed.get(u) ?? -1) > after);
  const part: Json = {
    to_device: { events },
    device_lists: { changed, left: [] },
    device_one_time_keys_count: counts(store, key),
    device_unused_fallback_key_types: [...(store.fallbackKeys.get(key)?.keys() ?? [])].map((id) => id.split(':')[0]),
  };
  return { part, news: events.length > 0 || changed.length > 0 };
}
