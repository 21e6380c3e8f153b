import ms from 'ms';
import { uniqueRoutes } from './route-map.ts';

/** How a mapping is checked against the plugins that are installed. */
export interface TargetRules {
  validate(target: string): string | undefined;
  normalize(target: string): string;
}

export interface Route {
  channel: string;
  /** As written in the mapping: what the plugin delivers to. */
  target: string;
  /** As the channel's plugin normalizes it: one receiver under two spellings is one order, one record and one delivery (see RouteMap). */
  receiver: string;
}

export interface Escalation {
  afterMs: number;
  everyMs: number;
  repeat: number;
  /** Nagged while nobody has read or acknowledged the message. */
  routes: Route[];
  /**
   * Per person (`"@will:half-shot.uk"`, as the watching channel names its
   * readers): nagged while that person has not read it, even once someone
   * else has. Absent when the block has no `users`.
   */
  users?: ReadonlyMap<string, Route[]>;
}

/** `"throttle": {"window": "5m"}`: repeats of one `key` within the window are folded into one digest. */
export interface Throttle {
  windowMs: number;
}

export interface Group {
  routes: Route[];
  escalate?: Escalation;
  throttle?: Throttle;
}

export interface Mapping {
  revision: string;
  groups: ReadonlyMap<string, Group>;
}

export type Validation = { ok: true; mapping: Mapping } | { ok: false; errors: string[] };

const RESERVED = new Set(['include', 'escalate', 'throttle']);
const GROUP_NAME = /^#[^\s,#\u0000-\u001f\u007f]{1,200}$/;
const MAX_ERRORS = 20;

/**
 * Check a mapping document whole and flatten it: `include`s expanded, targets
 * validated by their plugins and deduplicated. Every error names its document
 * path (`mapping["#admins"].matrix[1]: not a room id, alias or user id`); any
 * error refuses the revision whole.
 */
export function validateMapping(document: unknown, revision: string, channels: ReadonlyMap<string, TargetRules>): Validation {
  const errors: string[] = [];
  const fail = (path: string, message: string) => void (errors.length < MAX_ERRORS && errors.push(`${path}: ${message}`));
  const raw = isObject(document) ? document.mapping : undefined;
  if (!isObject(document)) return { ok: false, errors: ['(document): not a JSON object'] };
  if (!isObject(raw)) return { ok: false, errors: ['mapping: missing, or not an object of groups such as {"#admins": {...}}'] };

  const direct = new Map<string, Route[]>();
  const includes = new Map<string, string[]>();
  const escalations = new Map<string, Escalation>();
  const throttles = new Map<string, Throttle>();
  // Group names are compared in one Unicode form (NFC), as the router compares a message's `to`.
  const spelled = new Map<string, string>();
  for (const written of Object.keys(raw)) if (!spelled.has(written.normalize('NFC'))) spelled.set(written.normalize('NFC'), written);
  for (const [written, body] of Object.entries(raw)) {
    const name = written.normalize('NFC');
    const at = `mapping[${JSON.stringify(written)}]`;
    if (!GROUP_NAME.test(name)) fail(at, 'a group name starts with "#" and has no spaces or commas');
    if (spelled.get(name) !== written) {
      fail(at, `the same group as ${JSON.stringify(spelled.get(name))}, written in another Unicode form; write each group once`);
      continue;
    }
    if (!isObject(body)) {
      fail(at, 'not an object of channels such as {"matrix": [...]}');
      continue;
    }
    const routes: Route[] = [];
    for (const [key, value] of Object.entries(body)) {
      if (RESERVED.has(key)) continue;
      routes.push(...checkTargets(`${at}.${key}`, key, value, channels, fail));
    }
    direct.set(name, routes);
    if (body.include !== undefined) includes.set(name, checkIncludes(`${at}.include`, body.include, spelled, fail));
    if (body.escalate !== undefined) {
      const escalation = checkEscalation(`${at}.escalate`, body.escalate, channels, fail);
      if (escalation) escalations.set(name, escalation);
    }
    if (body.throttle !== undefined) {
      const throttle = checkThrottle(`${at}.throttle`, body.throttle, fail);
      if (throttle) throttles.set(name, throttle);
    }
  }

  const groups = new Map<string, Group>();
  const expanded = new Map<string, Route[]>();
  for (const name of direct.keys()) {
    const result = expand(name, [], direct, includes, expanded);
    if ('cycle' in result) {
      fail(`mapping[${JSON.stringify(name)}].include`, `a cycle: ${result.cycle.join(' → ')}`);
      continue;
    }
    const escalate = escalations.get(name);
    const throttle = throttles.get(name);
    groups.set(name, { routes: result.routes, ...(escalate ? { escalate } : {}), ...(throttle ? { throttle } : {}) });
  }
  return errors.length ? { ok: false, errors } : { ok: true, mapping: { revision, groups } };
}

/** A group's targets with its includes' (each once), or the cycle found; groups already expanded are reused, so a deep mesh of includes stays linear. */
function expand(
  name: string,
  path: string[],
  direct: Map<string, Route[]>,
  includes: Map<string, string[]>,
  expanded: Map<string, Route[]>,
): { routes: Route[] } | { cycle: string[] } {
  if (path.includes(name)) return { cycle: [...path.slice(path.indexOf(name)), name] };
  const done = expanded.get(name);
  if (done) return { routes: done };
  const lists = [direct.get(name) ?? []];
  for (const child of includes.get(name) ?? []) {
    const result = expand(child, [...path, name], direct, includes, expanded);
    if ('cycle' in result) return result;
    lists.push(result.routes);
  }
  const routes = uniqueRoutes(lists);
  expanded.set(name, routes);
  return { routes };
}

type Fail = (path: string, message: string) => void;

function checkTargets(at: string, channel: string, value: unknown, channels: ReadonlyMap<string, TargetRules>, fail: Fail): Route[] {
  const rules = channels.get(channel);
  if (!rules) {
    fail(at, `no channel plugin is named "${channel}" (installed: ${[...channels.keys()].join(', ') || 'none'})`);
    return [];
  }
  if (!Array.isArray(value)) {
    fail(at, 'not a list of targets');
    return [];
  }
  const routes: Route[] = [];
  value.forEach((target, i) => {
    if (typeof target !== 'string' || target.trim() === '') return fail(`${at}[${i}]`, 'not a non-empty string');
    const problem = rules.validate(target);
    if (problem) return fail(`${at}[${i}]`, problem);
    const receiver = rules.normalize(target);
    routes.push({ channel, target, receiver });
  });
  return routes;
}

function checkIncludes(at: string, value: unknown, groups: ReadonlyMap<string, string>, fail: Fail): string[] {
  if (!Array.isArray(value)) {
    fail(at, 'not a list of group names');
    return [];
  }
  const names: string[] = [];
  value.forEach((name, i) => {
    if (typeof name === 'string' && groups.has(name.normalize('NFC'))) names.push(name.normalize('NFC'));
    else fail(`${at}[${i}]`, `${JSON.stringify(name)} is not a group of this mapping`);
  });
  return names;
}

function checkEscalation(at: string, value: unknown, channels: ReadonlyMap<string, TargetRules>, fail: Fail): Escalation | undefined {
  if (!isObject(value)) {
    fail(at, 'not an object such as {"after": "15m", "email": [...]}');
    return undefined;
  }
  const afterMs = checkDuration(`${at}.after`, value.after, true, fail);
  const everyMs = checkDuration(`${at}.every`, value.every, false, fail) ?? afterMs;
  const repeat = value.repeat ?? 0;
  if (!Number.isInteger(repeat) || (repeat as number) < 0 || (repeat as number) > 100) fail(`${at}.repeat`, 'not a whole number from 0 to 100');
  const lists: Route[][] = [];
  for (const [key, targets] of Object.entries(value)) {
    if (['after', 'every', 'repeat', 'users'].includes(key)) continue;
    lists.push(checkTargets(`${at}.${key}`, key, targets, channels, fail));
  }
  const routes = uniqueRoutes(lists);
  const users = value.users === undefined ? undefined : checkUsers(`${at}.users`, value.users, channels, fail);
  if (routes.length === 0 && !users?.size) fail(at, 'names no channel to escalate through, such as "email": ["oncall@example.org"]');
  if (afterMs === undefined) return undefined;
  return { afterMs, everyMs: everyMs ?? afterMs, repeat: repeat as number, routes, ...(users?.size ? { users } : {}) };
}

const WINDOW_MIN_MS = 1000;
const WINDOW_MAX_MS = 7 * 24 * 3600 * 1000;

function checkThrottle(at: string, value: unknown, fail: Fail): Throttle | undefined {
  if (!isObject(value)) {
    fail(at, 'not an object such as {"window": "5m"}');
    return undefined;
  }
  const unknown = Object.keys(value).find((k) => k !== 'window');
  if (unknown !== undefined) fail(`${at}.${unknown}`, 'not a throttle option; the only one is "window", such as {"window": "5m"}');
  const windowMs = checkDuration(`${at}.window`, value.window, true, fail);
  if (windowMs === undefined) return undefined;
  if (windowMs < WINDOW_MIN_MS || windowMs > WINDOW_MAX_MS) {
    fail(`${at}.window`, `${JSON.stringify(value.window)} is outside 1s to 7d`);
    return undefined;
  }
  return unknown === undefined ? { windowMs } : undefined;
}

const READER = /^[^\s\u0000-\u001f\u007f]{1,255}$/;

/** `"users": {"@will:half-shot.uk": {"email": ["will@half-shot.uk"]}}`: each reader's own channels. */
function checkUsers(at: string, value: unknown, channels: ReadonlyMap<string, TargetRules>, fail: Fail): Map<string, Route[]> {
  const users = new Map<string, Route[]>();
  if (!isObject(value)) {
    fail(at, 'not an object of people such as {"@will:half-shot.uk": {"email": ["will@half-shot.uk"]}}');
    return users;
  }
  for (const [user, body] of Object.entries(value)) {
    const path = `${at}[${JSON.stringify(user)}]`;
    if (!READER.test(user)) fail(path, 'not a person\'s id as the watching channel names them, such as "@will:half-shot.uk"');
    if (!isObject(body)) {
      fail(path, 'not an object of channels such as {"email": ["will@half-shot.uk"]}');
      continue;
    }
    const routes = uniqueRoutes(Object.entries(body).map(([key, targets]) => checkTargets(`${path}.${key}`, key, targets, channels, fail)));
    if (routes.length === 0) fail(path, 'names no channel to reach this person through, such as "email": ["will@half-shot.uk"]');
    else users.set(user, routes);
  }
  return users;
}

function checkDuration(at: string, value: unknown, required: boolean, fail: Fail): number | undefined {
  if (value === undefined) {
    if (required) fail(at, 'missing: a duration such as "15m"');
    return undefined;
  }
  const parsed = typeof value === 'number' ? value : typeof value === 'string' ? ms(value as ms.StringValue) : NaN;
  if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed <= 0) {
    fail(at, `${JSON.stringify(value)} is not a duration such as "30s", "15m" or "2h"`);
    return undefined;
  }
  return parsed;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
