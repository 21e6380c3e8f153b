/**
 * Sign-in for the console: the operator gives `HUB_CONSOLE_TOKEN` once, in a
 * POST body, and gets a session cookie (HttpOnly, SameSite=Strict, Path=/console)
 * holding a random session id, never the token. Each session has its own CSRF
 * token, which the page reads from /console/api/session and sends back in a
 * header with every action.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'hub_console';
/** A session lasts this long after its last request. */
const IDLE_MS = 8 * 3600_000;
/** Sessions kept at most: the oldest go first (a script signing in forever cannot fill the memory). */
const MAX_SESSIONS = 1000;

export interface Session {
  csrf: string;
  seen: number;
}

export class Sessions {
  readonly #token: Buffer;
  readonly #sessions = new Map<string, Session>();

  constructor(token: string) {
    this.#token = digest(token);
  }

  /** The same time whatever was given: digests of equal length, compared in constant time. */
  tokenMatches(given: string): boolean {
    return timingSafeEqual(digest(given), this.#token);
  }

  open(): { id: string; session: Session } {
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const session = { csrf: randomBytes(32).toString('base64url'), seen: Date.now() };
    this.#sessions.set(id, session);
    return { id, session };
  }

  /** The session of a cookie header, if it is live. */
  find(cookieHeader: string | undefined): { id: string; session: Session } | undefined {
    const id = cookieOf(cookieHeader, SESSION_COOKIE);
    const session = id === undefined ? undefined : this.#sessions.get(id);
    if (!id || !session) return undefined;
    if (Date.now() - session.seen > IDLE_MS) {
      this.#sessions.delete(id);
      return undefined;
    }
    session.seen = Date.now();
    return { id, session };
  }

  close(id: string): void {
    this.#sessions.delete(id);
  }
}

export function csrfMatches(session: Session, given: string | undefined): boolean {
  return given !== undefined && timingSafeEqual(digest(given), digest(session.csrf));
}

export function sessionCookie(id: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/console; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedCookie(): string {
  return `${SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0`;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function cookieOf(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}
