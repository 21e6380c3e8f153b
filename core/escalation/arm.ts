/**
 * Arming: the escalation a message carries when one of its groups has an
 * `escalate` block. The router writes it in the same script call as the
 * fan-out (core/ingress/route-script.ts, ROUTE), so a message is either routed with
 * its escalation or not at all.
 */
import { type BodyFormat, toPlainText } from '../format.ts';
import { uniqueRoutes } from '../mapping/route-map.ts';
import type { Escalation, Mapping, Route } from '../mapping/validate.ts';

/** What the ROUTE script stores: the due time, the hash's lifetime and its fields. */
export interface ArmedEscalation {
  dueAt: number;
  ttlMs: number;
  fields: Record<string, string>;
}

/** A route as stored: `[channel, target]`, the target normalized, and as written when that differs. */
export type StoredRoute = [channel: string, target: string, address?: string];

const EXCERPT_CHARS = 300;

/**
 * The merged escalation of the groups a message went to, or `undefined` when
 * none of them escalates. Several blocks merge: the earliest `after`, the
 * shortest `every`, the most `repeat`s, every route and person once.
 */
export function escalationFor(
  mapping: Mapping | undefined,
  groups: string[],
  message: { subject?: string; body: string; format: BodyFormat },
  now: number,
  retentionMs: number,
): ArmedEscalation | undefined {
  const blocks = groups.map((g) => mapping?.groups.get(g)?.escalate).filter((e): e is Escalation => e !== undefined);
  if (blocks.length === 0) return undefined;
  const afterMs = Math.min(...blocks.map((b) => b.afterMs));
  const everyMs = Math.min(...blocks.map((b) => b.everyMs));
  const repeat = Math.max(...blocks.map((b) => b.repeat));
  const routes = uniqueRoutes(blocks.map((b) => b.routes));
  const users = new Map<string, Route[]>();
  for (const block of blocks) for (const [user, own] of block.users ?? []) users.set(user, uniqueRoutes([users.get(user) ?? [], own]));
  const stored = (rs: readonly Route[]): StoredRoute[] => rs.map((r) => (r.receiver === r.target ? [r.channel, r.receiver] : [r.channel, r.receiver, r.target]));
  const dueAt = now + afterMs;
  return {
    dueAt,
    ttlMs: retentionMs + afterMs + everyMs * repeat,
    fields: {
      state: 'armed',
      version: '0',
      round: '0',
      repeat: String(repeat),
      afterMs: String(afterMs),
      everyMs: String(everyMs),
      due: String(dueAt),
      armedAt: String(now),
      groups: JSON.stringify(groups.filter((g) => mapping?.groups.get(g)?.escalate)),
      routes: JSON.stringify(stored(routes)),
      ...(users.size ? { users: JSON.stringify(Object.fromEntries([...users].map(([u, rs]) => [u, stored(rs)]))) } : {}),
      ...(message.subject ? { subject: message.subject } : {}),
      excerpt: excerptOf(message.body, message.format),
    },
  };
}

/** The start of the body as one line of plain text, cut with an ellipsis. */
export function excerptOf(body: string, format: BodyFormat): string {
  let text: string;
  try {
    text = toPlainText(body, format).replace(/\s+/g, ' ').trim();
  } catch {
    // An excerpt is a courtesy: a poison body must not stop the routing of its batch (its deliveries say why).
    return '(the body could not be formatted)';
  }
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS - 1).trimEnd()}…` : text;
}
