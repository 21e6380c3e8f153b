/**
 * Small helpers shared by the end-to-end tests (test/e2e/): the matrix
 * channel's environment for a fake homeserver, waiting for a message's
 * outcomes, and plain HTTP reads of a hub's port.
 */
import type { Homeserver } from '../servers/matrix/index.ts';
import { eventually, type TestHub } from './hub.ts';

export interface MatrixBot {
  userId: string;
  accessToken: string;
  deviceId: string;
}

/** The matrix channel's settings, as a container would get them. */
export function matrixEnv(hs: Homeserver, bot: MatrixBot): Record<string, string> {
  return {
    MATRIX_HOMESERVER: hs.url,
    MATRIX_USER_ID: bot.userId,
    MATRIX_ACCESS_TOKEN: bot.accessToken,
    MATRIX_DEVICE_ID: bot.deviceId,
  };
}

/** Matches `PUT …/rooms/<roomId>/send/…` however the room id is encoded in the path (for `failNext`). */
export function sendsTo(roomId: string): RegExp {
  const localpart = roomId.slice(1, roomId.indexOf(':'));
  return new RegExp(`^PUT /_matrix/client/v3/rooms/(!|%21)${localpart}(:|%3A)[^/]+/send/`, 'i');
}

export type Outcome = { id: string } & Record<string, string>;

/**
 * Wait until every one of `count` deliveries of message `entry` has a final
 * outcome (`sent` or `dead`) in `<prefix>:events`; resolves with those events.
 */
export async function settled(hub: TestHub, entry: string, count: number, timeoutMs = 10_000): Promise<Outcome[]> {
  return eventually(
    `${count} final outcome(s) of ${entry}`,
    async () => {
      const final = (await hub.read('events')).filter((e) => e.entry === entry && (e.type === 'sent' || e.type === 'dead'));
      return final.length >= count && final;
    },
    timeoutMs,
  );
}

/** Wait until nothing is left to do: no entry waiting or in progress in `in` and every `deliver:*` stream. */
export async function idle(hub: TestHub, timeoutMs = 10_000): Promise<void> {
  await eventually(
    'the hub to be idle',
    async () => {
      const streams = [`${hub.prefix}:in`, ...(await hub.redis.keys(`${hub.prefix}:deliver:*`))];
      for (const stream of streams) {
        if ((await hub.redis.exists(stream)) === 0) continue;
        if ((await hub.redis.xlen(stream)) > 0) return false;
      }
      return true;
    },
    timeoutMs,
  );
}

/** GET a path of a hub's HTTP port: status and body. */
export async function httpGet(port: number, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}
