import type { BodyFormat } from '../format.ts';

/** A valid entry of `notify:in`, normalized. */
export interface InboundMessage {
  to: string[];
  body: string;
  subject?: string;
  format: BodyFormat;
  producerId?: string;
  /** The name of the producer that sent it (the HTTP ingress writes its token's name). */
  producer?: string;
  channels?: ReadonlySet<string>;
  /** The producer's name for "the same thing happening again": repeats of it to a throttled group are folded into a digest. */
  key?: string;
}

export type ParseResult = { ok: true; message: InboundMessage } | { ok: false; reason: string };

export interface ParseLimits {
  maxBodyBytes: number;
  maxGroups: number;
  /** The channels that exist, to check a `channels` filter against. */
  channels: ReadonlySet<string>;
}

const GROUP = /^#[^\s,#\u0000-\u001f\u007f]{1,200}$/;
const FORMATS = new Set(['html', 'text', 'markdown']);
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;
const LINE_BREAKS_AND_CONTROL = /[\u0000-\u001f\u007f\u2028\u2029]+/g;
/** The longest `key` an entry may carry. */
export const KEY_MAX_LENGTH = 200;
export const HAS_CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Turn the fields of one entry (flat, or one `content` JSON field) into a
 * message, or into a reason a person can act on (CONTRACT §1).
 */
export function parseEntry(fields: Record<string, string>, limits: ParseLimits): ParseResult {
  const fail = (reason: string): ParseResult => ({ ok: false, reason });
  let raw: Record<string, unknown> = fields;
  if (fields.content !== undefined) {
    if (fields.to !== undefined || fields.body !== undefined) return fail('the entry has both a `content` field and flat `to`/`body` fields; send one shape or the other');
    const limit = limits.maxBodyBytes * 2;
    if (fields.content.length > limit) return fail(`\`content\` is ${kib(fields.content.length)}, over the ${kib(limit)} limit; shorten the body or link to the details`);
    try {
      raw = JSON.parse(fields.content) as Record<string, unknown>;
    } catch (err) {
      return fail(`\`content\` is not valid JSON (${err instanceof RangeError ? 'nested too deep' : (err as Error).message}); send a JSON object such as {"to":"#admins","body":"..."}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      const kind = raw === null ? 'null' : Array.isArray(raw) ? 'array' : typeof raw;
      return fail(`\`content\` is JSON ${kind}, not an object; send a JSON object such as {"to":"#admins","body":"..."}`);
    }
  }

  const to = listOf(raw.to);
  if (to === undefined) return fail('`to` must be a string such as "#admins" (or a list of them in `content`)');
  if (to.length === 0) return fail('`to` is missing or empty: address the message to a group such as #admins');
  // One Unicode form (NFC), as the mapping's group names: `#café` typed either way is one group.
  const groups = [...new Set(to.map((g) => g.normalize('NFC')))];
  if (groups.length > limits.maxGroups) return fail(`\`to\` names ${groups.length} groups, over the limit of ${limits.maxGroups}; use a group that includes the others`);
  const badGroup = groups.find((g) => !GROUP.test(g));
  if (badGroup !== undefined) return fail(`\`to\`: ${JSON.stringify(shorten(badGroup))} is not a group name; group names start with # (for example #admins)`);

  if (raw.body === undefined || raw.body === null) return fail('`body` is missing: give the message text');
  if (typeof raw.body !== 'string') return fail(`\`body\` must be a string, not ${Array.isArray(raw.body) ? 'an array' : typeof raw.body}`);
  const body = raw.body.replace(CONTROL, '');
  if (body.trim() === '') return fail('`body` is empty: give the message text');
  const bytes = Buffer.byteLength(body);
  if (bytes > limits.maxBodyBytes) return fail(`\`body\` is ${kib(bytes)}, over the ${kib(limits.maxBodyBytes)} limit; shorten it or link to the details`);

  let subject: string | undefined;
  if (raw.subject !== undefined && raw.subject !== null) {
    if (typeof raw.subject !== 'string') return fail('`subject` must be a string');
    // One line: a CR/LF in a subject is how email headers get injected.
    const line = raw.subject.replace(LINE_BREAKS_AND_CONTROL, ' ').trim();
    // 250 characters, not UTF-16 units: a line of 250 units or fewer is as it is.
    subject = (line.length <= 250 ? line : Array.from(line).slice(0, 250).join('')) || undefined;
  }

  const format = raw.format ?? 'html';
  if (typeof format !== 'string' || !FORMATS.has(format)) return fail(`\`format\` ${JSON.stringify(shorten(String(format)))} is not one of html, text, markdown`);

  let producerId: string | undefined;
  if (raw.id !== undefined && raw.id !== null && raw.id !== '') {
    if (typeof raw.id !== 'string' && typeof raw.id !== 'number') return fail('`id` must be a string');
    producerId = String(raw.id);
    if (producerId.length > 200 || HAS_CONTROL.test(producerId)) return fail('`id` must be at most 200 characters without control characters');
  }

  let producer: string | undefined;
  if (raw.producer !== undefined && raw.producer !== null && raw.producer !== '') {
    if (typeof raw.producer !== 'string' || raw.producer.length > 64 || HAS_CONTROL.test(raw.producer)) return fail('`producer` must be a name of at most 64 characters without control characters');
    producer = raw.producer;
  }

  let channels: Set<string> | undefined;
  if (raw.channels !== undefined && raw.channels !== null && raw.channels !== '') {
    const names = listOf(raw.channels);
    if (names === undefined || names.length === 0) return fail('`channels` must be a comma list of channel names such as "matrix,email"');
    const unknown = names.find((c) => !limits.channels.has(c));
    if (unknown !== undefined) return fail(`\`channels\`: no channel is named ${JSON.stringify(shorten(unknown))} (known: ${[...limits.channels].join(', ')})`);
    channels = new Set(names);
  }

  let key: string | undefined;
  if (raw.key !== undefined && raw.key !== null && raw.key !== '') {
    if (typeof raw.key !== 'string' && typeof raw.key !== 'number') return fail('`key` must be a string such as "orders-api:5xx"');
    key = String(raw.key);
    if (key.length > KEY_MAX_LENGTH || HAS_CONTROL.test(key)) return fail('`key` must be at most 200 characters without control characters');
  }

  const message: InboundMessage = { to: groups, body, format: format as BodyFormat };
  if (subject) message.subject = subject;
  if (producerId) message.producerId = producerId;
  if (producer) message.producer = producer;
  if (channels) message.channels = channels;
  if (key) message.key = key;
  return { ok: true, message };
}

/** `"#a, #b"` or `["#a", "#b"]` → `["#a", "#b"]`; `undefined` when it is neither. */
function listOf(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return [];
  const items: unknown[] | undefined = typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : undefined;
  if (items === undefined) return undefined;
  const list: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string') return undefined;
    const name = item.trim();
    if (name !== '') list.push(name);
  }
  return list;
}

function kib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
