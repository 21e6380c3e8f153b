/**
 * Checks the fake homeserver's traffic against the official Matrix API files
 * (vendored unmodified in `./spec/data`, see its README): every request body against its operation's
 * `requestBody` schema, every response against the schema for its status, and
 * the content of sent events against their event schemas. Loaded once per
 * process; `$ref`s (relative files and JSON pointers) are inlined.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

export const SPEC_DIR = process.env.MATRIX_SPEC_DIR
  ?? fileURLToPath(new URL('./spec/data/', import.meta.url));
const API_DIR = join(SPEC_DIR, 'api/client-server');
const EVENT_DIR = join(SPEC_DIR, 'event-schemas/schema');

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface Operation {
  method: string;
  /** The full path template, base path included: `/_matrix/client/v3/rooms/{roomId}/join`. */
  path: string;
  /** `required`, `optional` (`security` lists `{}`) or `none` (no `security`). */
  auth: 'required' | 'optional' | 'none';
  params: Map<string, ValidateFunction>;
  request: ValidateFunction | undefined;
  requestRequired: boolean;
  /** Status → schema; `null` when the status is declared without a body schema. */
  responses: Map<string, ValidateFunction | null>;
}

const ajv = new Ajv2020({ strict: true, strictTypes: false, strictTuples: false, allErrors: true, logger: false });
addFormatsModule.default(ajv);
registerMatrixFormats();

const files = new Map<string, unknown>();
function load(path: string): unknown {
  if (!files.has(path)) files.set(path, parse(readFileSync(path, 'utf8')));
  return files.get(path);
}

/** Annotations that are not validation keywords (and whose values may hold anything, `$ref` included). */
const DROP = new Set(['example', 'examples', 'description', '$schema', 'deprecated']);

/** Inline every `$ref` of `node` (found in `file`); drop annotations ajv's strict mode would refuse. */
function inline(node: unknown, file: string, seen: string[] = [], propertyMap = false): unknown {
  if (Array.isArray(node)) return node.map((n) => inline(n, file, seen));
  if (!isObject(node)) return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (!propertyMap && (key === '$ref' || DROP.has(key) || key.startsWith('x-'))) continue;
    out[key] = inline(value, file, seen, !propertyMap && (key === 'properties' || key === 'patternProperties'));
  }
  if (propertyMap || typeof node.$ref !== 'string') return out;
  const [relative = '', pointer = ''] = node.$ref.split('#');
  const target = relative ? resolve(dirname(file), relative) : file;
  const id = `${target}#${pointer}`;
  if (seen.includes(id)) throw new Error(`circular $ref ${id}`);
  let referenced = load(target);
  for (const part of pointer.split('/').filter(Boolean)) referenced = (referenced as Json)[part];
  const resolved = inline(referenced, target, [...seen, id]);
  if (Object.keys(out).length === 0) return resolved;
  const allOf = Array.isArray(out.allOf) ? out.allOf : [];
  return { ...out, allOf: [...allOf, resolved] };
}

function compile(schema: unknown, file: string): ValidateFunction {
  return ajv.compile(inline(schema, file) as Json);
}

const operations: Operation[] = [];
for (const name of readdirSync(API_DIR).filter((f) => f.endsWith('.yaml'))) {
  const file = join(API_DIR, name);
  const doc = load(file) as Json;
  const servers = doc.servers as Array<{ variables?: { basePath?: { default?: string } } }> | undefined;
  const base = servers?.[0]?.variables?.basePath?.default ?? '';
  for (const [rawPath, item] of Object.entries((doc.paths ?? {}) as Record<string, Json>)) {
    for (const [method, op] of Object.entries(item) as Array<[string, Json]>) {
      operations.push(operation(method.toUpperCase(), base + rawPath.trim(), op, file));
    }
  }
}

function operation(method: string, path: string, op: Json, file: string): Operation {
  const security = op.security as Json[] | undefined;
  const auth = !security ? 'none' : security.some((s) => Object.keys(s).length === 0) ? 'optional' : 'required';
  const params = new Map<string, ValidateFunction>();
  for (const p of (op.parameters ?? []) as Json[]) {
    if (p.in === 'path') params.set(String(p.name), compile(p.schema, file));
  }
  const body = op.requestBody as Json | undefined;
  const bodySchema = (body?.content as Json | undefined)?.['application/json'] as Json | undefined;
  const responses = new Map<string, ValidateFunction | null>();
  for (const [status, response] of Object.entries((op.responses ?? {}) as Record<string, Json>)) {
    const schema = ((response.content as Json | undefined)?.['application/json'] as Json | undefined)?.schema;
    responses.set(status, schema ? compile(schema, file) : null);
  }
  return {
    method, path, auth, params, responses,
    request: bodySchema?.schema ? compile(bodySchema.schema, file) : undefined,
    requestRequired: body?.required === true,
  };
}

const errorSchema = compile({ $ref: 'definitions/errors/error.yaml' }, join(API_DIR, 'x.yaml'));
const rateLimitedSchema = compile({ $ref: 'definitions/errors/rate_limited.yaml' }, join(API_DIR, 'x.yaml'));

/** The operation the spec defines for this method and full path template, if any. */
export function findOperation(method: string, path: string): Operation | undefined {
  return operations.find((o) => o.method === method && o.path === path);
}

/** Why `value` does not match, or `undefined`. */
export function check(validate: ValidateFunction, value: unknown, dataVar = 'body'): string | undefined {
  if (validate(value)) return undefined;
  return ajv.errorsText(validate.errors, { dataVar });
}

/**
 * Why a response does not match its operation, or `undefined`. Statuses the
 * operation does not list are allowed for errors only ("any endpoint" may
 * answer a standard error, 429 included), and are checked against the
 * standard error schemas; every error body must carry both `errcode` and
 * `error` (API standards: "the keys `error` and `errcode` MUST always be present").
 * Without an operation (a route the vendored files lack) only errors are checked.
 */
export function checkResponse(op: Operation | undefined, status: number, body: unknown): string | undefined {
  const declared = op?.responses.get(String(status));
  if (status < 400) {
    if (!op) return undefined;
    if (declared === undefined) return `status ${status} is not a response of ${op.method} ${op.path}`;
    return declared ? check(declared, body) : undefined;
  }
  if (!isObject(body) || typeof body.errcode !== 'string' || typeof body.error !== 'string') {
    return 'an error body must have string errcode and error';
  }
  return check(declared ?? (status === 429 ? rateLimitedSchema : errorSchema), body);
}

const eventSchemas = new Map<string, ValidateFunction | null>();
/** Why an event's content does not match its event schema (`m.room.message$m.text.yaml`…), or `undefined`. */
export function checkEventContent(type: string, content: Json): string | undefined {
  const msgtype = typeof content.msgtype === 'string' ? content.msgtype : undefined;
  const candidates = [msgtype && `${type}$${msgtype}.yaml`, `${type}.yaml`].filter(Boolean) as string[];
  const name = candidates.find((n) => existsSync(join(EVENT_DIR, n)));
  if (!name) return undefined;
  if (!eventSchemas.has(name)) {
    const schema = (load(join(EVENT_DIR, name)) as Json).properties as Json | undefined;
    eventSchemas.set(name, schema?.content ? compile(schema.content, join(EVENT_DIR, name)) : null);
  }
  const validate = eventSchemas.get(name);
  const problem = validate ? check(validate, content) : undefined;
  return problem && `${name}: ${problem}`;
}

/**
 * The custom formats of `string-formats.yaml`. Their regexes live in comments
 * (`# regex: "^@"`), so they are read from the text; formats without one get
 * the appendices' grammar where it is short, or accept anything.
 */
function registerMatrixFormats(): void {
  const text = readFileSync(join(SPEC_DIR, 'string-formats.yaml'), 'utf8');
  const names = Object.keys(parse(text) as Json);
  const fallback: Record<string, (s: string) => boolean> = {
    'mx-server-name': (s) => {
      const m = /^(?:\[([0-9A-Fa-f:.]{2,45})\]|([0-9A-Za-z.-]{1,255}))(?::\d{1,5})?$/.exec(s);
      return m !== null && (m[1] === undefined || isIPv6(m[1]));
    },
    'mx-unpadded-base64': (s) => /^[A-Za-z0-9+/]*$/.test(s),
    'mx-urlsafe-unpadded-base64': (s) => /^[A-Za-z0-9_-]*$/.test(s),
  };
  for (const name of names) {
    if (ajv.formats[name]) continue;
    const comment = new RegExp(`^${name}:\\n(?:[ \\t].*\\n)*?[ \\t]*# regex: "(.*)"`, 'm').exec(text);
    const regex = comment?.[1] !== undefined ? new RegExp(comment[1].replace(/\\\\/g, '\\')) : undefined;
    ajv.addFormat(name, regex ?? fallback[name] ?? (() => true));
  }
}
