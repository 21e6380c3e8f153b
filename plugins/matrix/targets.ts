/**
 * Matrix targets, after the spec's identifier grammar (appendices,
 * "Identifier Grammar"): `!room:server`, `#alias:server`, `@user:server`.
 *
 * - server_name = hostname [":" port]; hostname = IPv4 / "[" IPv6 "]" / dns-name.
 * - User localparts: the current grammar is `[a-z0-9._=\-/+]`, but clients
 *   MUST accept historical ids, so any printable ASCII but `:` is accepted.
 * - Room id and alias localparts may hold any character but `:` and NUL;
 *   whitespace and control characters are refused all the same: homeservers
 *   never generate them, Synapse refuses them in aliases, and in a mapping
 *   they are typos. Room version 12 room ids (`!` + a 43-character hash, no
 *   server name) are accepted too.
 * - A whole id is at most 255 bytes.
 */
import { isIPv6 } from 'node:net';

export type TargetKind = 'room' | 'alias' | 'user';

const PORT = /^\d{1,5}$/;
const DNS_NAME = /^[0-9A-Za-z.-]{1,255}$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HISTORICAL_USER_LOCALPART = /^[\x21-\x39\x3B-\x7E]+$/;
const OPAQUE_LOCALPART = /^[^:\s\p{Cc}]+$/u;
const ROOM_V12_ID = /^![0-9A-Za-z_-]{43}$/;

/** Why `name` is not a server name, or `undefined`. */
export function serverNameProblem(name: string): string | undefined {
  let host = name;
  let port: string | undefined;
  if (name.startsWith('[')) {
    const end = name.indexOf(']');
    if (end < 0) return `the server name ${name} has an unclosed IPv6 literal`;
    host = name.slice(0, end + 1);
    const rest = name.slice(end + 1);
    if (rest && !rest.startsWith(':')) return `the server name ${name} has text after its IPv6 literal`;
    port = rest ? rest.slice(1) : undefined;
    if (!isIPv6(host.slice(1, -1))) return `the server name ${name} has an invalid IPv6 literal`;
  } else {
    const colon = name.lastIndexOf(':');
    if (colon >= 0) [host, port] = [name.slice(0, colon), name.slice(colon + 1)];
    const quad = IPV4.exec(host);
    if (quad && quad.slice(1).some((octet) => Number(octet) > 255)) return `the server name ${name} is not a valid IPv4 address`;
    if (!DNS_NAME.test(host)) return `the server name ${JSON.stringify(name)} is not a host name with an optional port`;
  }
  if (port !== undefined && !PORT.test(port)) return `the server name ${name} has an invalid port`;
  return undefined;
}

export function kindOf(target: string): TargetKind | undefined {
  return ({ '!': 'room', '#': 'alias', '@': 'user' } as const)[target[0] as '!' | '#' | '@'];
}

/** Why `target` is not a Matrix room id, alias or user id, or `undefined`. */
export function targetProblem(target: string): string | undefined {
  const kind = kindOf(target);
  if (!kind) return 'not a room id, alias or user id (expected !room:server, #alias:server or @user:server)';
  const noun = kind === 'room' ? 'room id' : kind === 'alias' ? 'room alias' : 'user id';
  if (Buffer.byteLength(target) > 255) return `not a valid ${noun}: longer than 255 bytes`;
  if (kind === 'room' && ROOM_V12_ID.test(target)) return undefined;
  const colon = target.indexOf(':');
  if (colon < 0) return `not a valid ${noun}: no ":server" part (expected ${target[0]}name:server)`;
  const localpart = target.slice(1, colon);
  const localOk = kind === 'user' ? HISTORICAL_USER_LOCALPART.test(localpart) : OPAQUE_LOCALPART.test(localpart);
  if (!localOk) {
    return localpart ? `not a valid ${noun}: ${JSON.stringify(localpart)} has characters a ${noun} cannot have` : `not a valid ${noun}: nothing before ":"`;
  }
  const server = serverNameProblem(target.slice(colon + 1));
  return server && `not a valid ${noun}: ${server}`;
}

export const isUserId = (s: string): boolean => kindOf(s) === 'user' && targetProblem(s) === undefined;
