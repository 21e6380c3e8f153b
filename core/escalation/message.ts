/**
 * The reminder an escalation sends: what was not read (subject and the start
 * of the body), when it was sent, and where (each watched delivery with the
 * link its plugin gave, a matrix.to permalink for Matrix). HTML, through the
 * normal delivery path: every channel renders it its own way.
 */
import ms from 'ms';
import { escapeHtml } from '../format.ts';

export interface WatchedDelivery {
  channel: string;
  target: string;
  state: string;
  /** When it was delivered (ISO), if it was. */
  at?: string;
  link?: string;
  peerId?: string;
  error?: string;
}

export interface ReminderInput {
  groups: string[];
  subject?: string;
  excerpt: string;
  receivedAt?: number;
  afterMs: number;
  /** 1-based round of this reminder and the number of rounds in all. */
  round: number;
  rounds: number;
  deliveries: WatchedDelivery[];
  /** People who read it already (with per-person routes, the others are still nagged). */
  readBy: string[];
  now: number;
}

export interface Reminder {
  subject: string;
  body: string;
  format: 'html';
}

const when = (t: number | string): string => new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
const SUBJECT_CHARS = 120;

export function reminderMessage(input: ReminderInput): Reminder {
  const title = input.subject ?? input.excerpt;
  const short = title.length > SUBJECT_CHARS ? `${title.slice(0, SUBJECT_CHARS - 1)}…` : title;
  const of = input.rounds > 1 ? ` (reminder ${input.round} of ${input.rounds})` : '';
  const subject = input.round === 1 ? `Not read after ${ms(input.afterMs, { long: true })}: ${short}` : `Still not read${of}: ${short}`;
  const sentAt = input.receivedAt ?? input.deliveries.find((d) => d.at)?.at;
  const ago = input.receivedAt !== undefined ? ` (${ms(Math.max(0, input.now - input.receivedAt), { long: true })} ago)` : '';
  const readers = input.readBy.length ? ` It was read by ${input.readBy.map(escapeHtml).join(', ')}, not yet by everyone it was meant for.` : '';
  const lines = input.deliveries.map((d) => `<li>${escapeHtml(d.channel)} ${escapeHtml(d.target)}: ${where(d)}</li>`);
  const body = [
    `<p><b>Not read yet.</b> Nobody has acknowledged this notification to ${escapeHtml(input.groups.join(', '))}`,
    sentAt !== undefined ? ` sent ${when(sentAt)}${ago}.` : '.',
    `${readers}${of ? ` This is reminder ${input.round} of ${input.rounds}.` : ''}</p>`,
    `<blockquote>${input.subject ? `<b>${escapeHtml(input.subject)}</b><br>` : ''}${escapeHtml(input.excerpt)}</blockquote>`,
    `<p>Where it was sent:</p><ul>${lines.join('')}</ul>`,
    '<p>Read it, react to it or reply to it there to stop these reminders.</p>',
  ].join('');
  return { subject, body, format: 'html' };
}

function where(d: WatchedDelivery): string {
  if (d.state !== 'sent') return d.state === 'dead' ? `not delivered${d.error ? ` (${escapeHtml(d.error)})` : ''}` : `not delivered yet (${escapeHtml(d.state)})`;
  const at = d.at ? `delivered ${when(d.at)}` : 'delivered';
  if (d.link) return `${at}, <a href="${escapeHtml(d.link)}">${escapeHtml(d.link)}</a>`;
  return d.peerId ? `${at} as ${escapeHtml(d.peerId)}` : at;
}
