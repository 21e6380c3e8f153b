/**
 * X targets: `post` (a public post from the hub's account), `@handle` or a
 * numeric user id (a direct message). The patterns are those of the X API
 * spec: usernames `^[A-Za-z0-9_]{1,15}$`, user ids `^[0-9]{1,19}$`.
 */
export type TwitterTarget =
  | { kind: 'post' }
  | { kind: 'handle'; username: string }
  | { kind: 'user'; id: string };

const HANDLE = /^@([A-Za-z0-9_]{1,15})$/;
const USER_ID = /^[0-9]{1,19}$/;

export function parseTwitterTarget(target: string): TwitterTarget | undefined {
  if (target === 'post') return { kind: 'post' };
  const handle = HANDLE.exec(target);
  if (handle) return { kind: 'handle', username: handle[1]!.toLowerCase() };
  if (USER_ID.test(target)) return { kind: 'user', id: target };
  return undefined;
}

export function validateTwitterTarget(target: string): string | undefined {
  if (parseTwitterTarget(target)) return undefined;
  if (target.startsWith('@')) {
    return `${target} is not an X handle: after the @, 1 to 15 letters, digits or underscores`;
  }
  return `${JSON.stringify(target)} is not an X target: write "post" for a public post, or @handle or a numeric user id for a direct message`;
}

/** Handles are case-insensitive on X. */
export function normalizeTwitterTarget(target: string): string {
  return HANDLE.test(target) ? target.toLowerCase() : target;
}
