/**
 * What each endpoint's request becomes: the fields of one `notify:in` entry,
 * checked now as the hub will check them when it routes (parse-entry and the
 * mapping in force), so that what would be dead-lettered is refused instead.
 */
import type { MappingStore } from '../../mapping/store.ts';
import { parseEntry, type ParseLimits } from '../parse-entry.ts';
import { noTargets } from '../router.ts';
import { notificationSchema, renderNotification } from './alertmanager.ts';
import type { Producer } from './producers.ts';

/** A refusal: the HTTP status, a sentence, and the field it is about. */
export interface Refusal {
  status: number;
  error: string;
  field?: string;
}

export type Built = { ok: true; fields: Record<string, string> } | ({ ok: false } & Refusal);

export interface EntryContext {
  producer: Producer;
  limits: ParseLimits;
  mappingStore: MappingStore;
  /** The `Idempotency-Key` header. */
  idempotencyKey: string | undefined;
}

/** The fields a `/v1/messages` body may have (CONTRACT §1 and §9). */
const MESSAGE_FIELDS = new Set(['to', 'body', 'subject', 'format', 'id', 'channels', 'key']);

/** `POST /v1/messages`: a JSON object with the fields of an entry, written as its `content` field. */
export function messageEntry(body: Buffer, ctx: EntryContext): Built {
  const json = parseJson(body);
  if (!json.ok) return json;
  const message = json.value;
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    return refuse(400, `the body is JSON ${message === null ? 'null' : Array.isArray(message) ? 'array' : typeof message}, not an object; send an object such as {"to":"#admins","body":"Backup done"}`);
  }
  const object = message as Record<string, unknown>;
  const unknown = Object.keys(object).find((k) => !MESSAGE_FIELDS.has(k));
  if (unknown !== undefined) {
    const why = unknown === 'producer' ? 'it is set from your token' : `the fields are ${[...MESSAGE_FIELDS].join(', ')}`;
    return refuse(422, `\`${shorten(unknown)}\` is not a field of a message: ${why}`, shorten(unknown));
  }
  const id = idOf(object.id, ctx.idempotencyKey);
  if (!id.ok) return id;
  const content = JSON.stringify({ ...object, ...(id.value !== undefined ? { id: id.value } : {}), producer: ctx.producer.name });
  return checked({ content }, ctx);
}

/** `POST /v1/groups/{group}`: the text itself, `Title` → subject, the content type → format. */
export function groupEntry(group: string, body: Buffer, format: 'text' | 'markdown' | 'html', title: string | undefined, ctx: EntryContext): Built {
  const text = utf8(body);
  if (text === undefined) return refuse(400, 'the body is not valid UTF-8 text', 'body');
  const fields: Record<string, string> = { to: group, body: text, format, producer: ctx.producer.name };
  if (title !== undefined && title.trim() !== '') fields.subject = title;
  if (ctx.idempotencyKey !== undefined) fields.id = ctx.idempotencyKey;
  return checked(fields, ctx);
}

/** `POST /v1/alertmanager/{group}`: one readable message per notification, `key` its group key, `id` derived from it. */
export function alertmanagerEntry(group: string, body: Buffer, ctx: EntryContext): Built {
  const json = parseJson(body);
  if (!json.ok) return json;
  const parsed = notificationSchema.safeParse(json.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.');
    return refuse(422, `${field ? `\`${field}\`: ` : ''}${issue.message}; expected Alertmanager's webhook payload (version 4) or Grafana's webhook contact point`, field || undefined);
  }
  const rendered = renderNotification(parsed.data, ctx.limits.maxBodyBytes);
  const fields: Record<string, string> = {
    to: group,
    subject: rendered.subject,
    body: rendered.body,
    format: 'html',
    id: ctx.idempotencyKey ?? rendered.id,
    key: rendered.key,
    producer: ctx.producer.name,
  };
  return checked(fields, ctx);
}

/** parse-entry's verdict, the token's groups, then the mapping's: the reasons a dead letter would give. */
function checked(fields: Record<string, string>, ctx: EntryContext): Built {
  const parsed = parseEntry(fields, ctx.limits);
  if (!parsed.ok) {
    const field = /^`(\w+)`/.exec(parsed.reason)?.[1];
    const tooLarge = (field === 'body' || field === 'content') && / over the .* limit/.test(parsed.reason);
    return refuse(tooLarge ? 413 : 422, parsed.reason, field === 'content' ? 'body' : field);
  }
  const { message } = parsed;
  const forbidden = message.to.find((g) => !ctx.producer.mayAddress(g));
  if (forbidden !== undefined) return refuse(403, `producer ${ctx.producer.name} may not address ${forbidden}; its token lists the groups it may`, 'to');
  // With no mapping yet the hub waits for one, and so does the entry, as with any XADD.
  if (ctx.mappingStore.current) {
    const { routes, unknown } = ctx.mappingStore.resolve(message.to, message.channels);
    if (unknown.length) return refuse(422, `no group ${unknown.join(', ')} in the mapping; add it to the mapping or address another group`, 'to');
    if (routes.length === 0) return refuse(422, noTargets(message), 'to');
  }
  return { ok: true, fields };
}

function idOf(bodyId: unknown, header: string | undefined): { ok: true; value: unknown } | ({ ok: false } & Refusal) {
  if (header === undefined) return { ok: true, value: bodyId };
  if (bodyId !== undefined && bodyId !== null && bodyId !== '' && String(bodyId) !== header) {
    return refuse(422, 'the body\'s `id` and the Idempotency-Key header differ; send one of them', 'id');
  }
  return { ok: true, value: header };
}

function parseJson(body: Buffer): { ok: true; value: unknown } | ({ ok: false } & Refusal) {
  const text = utf8(body);
  if (text === undefined) return refuse(400, 'the body is not valid UTF-8');
  if (text.trim() === '') return refuse(400, 'the body is empty; send a JSON object');
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return refuse(400, `the body is not valid JSON (${err instanceof RangeError ? 'nested too deep' : (err as Error).message})`);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });
function utf8(body: Buffer): string | undefined {
  try {
    return decoder.decode(body);
  } catch {
    return undefined;
  }
}

function refuse(status: number, error: string, field?: string): { ok: false } & Refusal {
  return { ok: false, status, error, ...(field ? { field } : {}) };
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
