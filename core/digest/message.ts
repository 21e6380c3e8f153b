/**
 * The digest a closing throttle window sends: how many more came, from when
 * to when, and the latest of them in full. One HTML message with a subject,
 * through the normal delivery path, so that every channel renders it its own
 * way: the count leads the subject ("12 more: Orders API failing"), which is
 * an email's subject and the bold first line of a Matrix or Slack message,
 * and the start of an X post.
 */
import { type BodyFormat, escapeHtml, subjectLine, toHtml, toPlainText } from '../format.ts';

export interface DigestInput {
  group: string;
  key: string;
  /** Messages held in the window. */
  count: number;
  /** When the window opened (its first message went out at once), and the first and last held message came (ms). */
  opened: number;
  first: number;
  last: number;
  latest: { subject?: string; body: string; format: BodyFormat };
}

export interface DigestMessage {
  subject: string;
  body: string;
  format: 'html';
}

const SUBJECT_CHARS = 120;
const when = (t: number): string => new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

export function digestMessage(input: DigestInput): DigestMessage {
  const latestHtml = bodyHtml(input.latest.body, input.latest.format);
  const title = input.latest.subject || subjectLine(plainText(input.latest.body, input.latest.format)) || input.key;
  const more = `${input.count} more`;
  const span = input.count === 1 ? `at ${when(input.last)}` : `from ${when(input.first)} to ${when(input.last)}`;
  const body = [
    `<p><b>${more}</b> to ${escapeHtml(input.group)} with key <code>${escapeHtml(input.key)}</code>, ${span}`,
    ` (held since the first went out at ${when(input.opened)}).</p>`,
    `<p>The latest, at ${when(input.last)}:</p>`,
    `<blockquote>${input.latest.subject ? `<p><b>${escapeHtml(input.latest.subject)}</b></p>` : ''}${latestHtml}</blockquote>`,
  ].join('');
  return { subject: `${more}: ${cut(subjectLine(title))}`, body, format: 'html' };
}

function cut(text: string): string {
  const chars = [...text];
  return chars.length <= SUBJECT_CHARS ? text : `${chars.slice(0, SUBJECT_CHARS - 1).join('').trimEnd()}…`;
}

function plainText(body: string, format: BodyFormat): string {
  try {
    return toPlainText(body, format);
  } catch {
    return '';
  }
}

function bodyHtml(body: string, format: BodyFormat): string {
  try {
    return toHtml(body, format);
  } catch {
    // A body beyond the formatting bounds would make the digest itself undeliverable: say so instead.
    return '<i>(the latest message could not be formatted; see it with hub status)</i>';
  }
}
