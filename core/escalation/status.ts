/** The escalation of one message as `hub status <msgId>` shows it. */
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/keys.ts';
import type { StoredRoute } from './arm.ts';
import type { EscalationDelivery } from './escalator.ts';

export interface EscalationStatus {
  /** `armed` (waiting), `acknowledged` (read or acknowledged), `done` (every round sent), `unwatched` (nothing went where it could be read). */
  state: string;
  afterMs: number;
  everyMs: number;
  /** Rounds sent so far, and in all (1 + repeat). */
  round: number;
  rounds: number;
  armedAt?: string;
  nextDueAt?: string;
  lastSentAt?: string;
  endedAt?: string;
  acknowledged?: { by: string; how: string; at: string };
  /** People who sent a read receipt, and when. */
  readBy: Array<{ by: string; at: string }>;
  routes: string[];
  users?: Record<string, string[]>;
  /** The reminders queued so far: delivery id, channel, target, round. */
  deliveries: Array<{ id: string; channel: string; target: string; round: number }>;
}

const iso = (ms: string | undefined): string | undefined => (ms && Number.isFinite(Number(ms)) ? new Date(Number(ms)).toISOString() : undefined);
const routeText = (routes: StoredRoute[]): string[] => routes.map(([channel, target]) => `${channel} ${target}`);

export async function escalationStatus(redis: Redis, keys: Keys, entry: string): Promise<EscalationStatus | undefined> {
  const h = await redis.hgetall(keys.escalation(entry));
  if (!h.state) return undefined;
  const opt = <T>(name: string, value: T | undefined) => (value === undefined ? {} : { [name]: value });
  return {
    state: h.state,
    afterMs: Number(h.afterMs),
    everyMs: Number(h.everyMs),
    round: Number(h.round ?? 0),
    rounds: 1 + Number(h.repeat ?? 0),
    ...opt('armedAt', iso(h.armedAt)),
    ...opt('nextDueAt', h.state === 'armed' ? iso(h.due) : undefined),
    ...opt('lastSentAt', iso(h.lastAt)),
    ...opt('endedAt', iso(h.endedAt)),
    ...(h.ackBy ? { acknowledged: { by: h.ackBy, how: h.ackHow ?? '', at: iso(h.ackAt) ?? '' } } : {}),
    readBy: Object.entries(h).filter(([f]) => f.startsWith('read:')).map(([f, at]) => ({ by: f.slice(5), at: iso(at) ?? '' })),
    routes: routeText(JSON.parse(h.routes ?? '[]') as StoredRoute[]),
    ...(h.users ? { users: Object.fromEntries(Object.entries(JSON.parse(h.users) as Record<string, StoredRoute[]>).map(([u, rs]) => [u, routeText(rs)])) } : {}),
    deliveries: (JSON.parse(h.sent ?? '[]') as EscalationDelivery[]).map(([id, channel, target, round]) => ({ id, channel, target, round })),
  };
}
