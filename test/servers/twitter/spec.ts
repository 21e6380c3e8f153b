/**
 * Checks the local X server's traffic against X's published OpenAPI 3.0 file
 * (../shared/specs/twitter/specs/openapi.json): path and query parameters,
 * request bodies (CreatePostsRequest, CreateDirectMessagesByParticipantIdRequest)
 * and response bodies by status and content type, `$ref`s resolved within
 * the file.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

const SPEC_FILE = new URL('../../../../shared/specs/twitter/specs/openapi.json', import.meta.url);
const SPEC_ID = 'x-openapi.json';

/**
 * X answers generic HTTP failures (401, 403 duplicate content, 429, …) with
 * an RFC 7807 problem of type `about:blank`, which the spec's `Problem` union
 * does not list: those are checked against this shape instead.
 */
const GENERIC_PROBLEM = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { const: 'about:blank' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
  },
};

interface Parameter { name: string; in: string; required?: boolean; schema?: object; $ref?: string }
interface MediaTypes { content?: Record<string, { schema?: object }> }
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: MediaTypes & { required?: boolean };
  responses: Record<string, MediaTypes>;
}
interface OpenApi { paths: Record<string, Record<string, Operation>> }

// ajv-formats is CommonJS with a default export that TypeScript's nodenext view does not see.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export class XSpec {
  readonly #spec: OpenApi;
  readonly #ajv: Ajv;
  readonly #validators = new Map<string, ValidateFunction>();

  constructor() {
    this.#spec = JSON.parse(readFileSync(SPEC_FILE, 'utf8')) as OpenApi;
    this.#ajv = new Ajv({ strict: false, allErrors: true, logger: false });
    addFormats(this.#ajv);
    this.#ajv.addSchema(this.#spec as object, SPEC_ID);
  }

  operation(method: string, path: string): Operation {
    const operation = this.#spec.paths[path]?.[method.toLowerCase()];
    if (!operation) throw new Error(`${method} ${path} is not in the X spec`);
    return operation;
  }

  /** Path and query parameters: unknown names, missing required ones, values against their schemas. */
  checkParameters(method: string, path: string, values: { path: Record<string, string>; query: URLSearchParams }): string[] {
    const operation = this.operation(method, path);
    const params = (operation.parameters ?? []).map((p) => this.#deref<Parameter>(p));
    const problems: string[] = [];
    for (const name of new Set(values.query.keys())) {
      if (!params.some((p) => p.in === 'query' && p.name === name)) problems.push(`${operation.operationId}: query parameter ${name} is not in the spec`);
    }
    for (const p of params) {
      const raw = p.in === 'path' ? values.path[p.name] : p.in === 'query' ? values.query.get(p.name) ?? undefined : undefined;
      if (raw === undefined) {
        if (p.required) problems.push(`${operation.operationId}: required ${p.in} parameter ${p.name} is missing`);
        continue;
      }
      if (!p.schema) continue;
      // Arrays are sent form-style, not exploded: `user.fields=id,name`.
      const value = (p.schema as { type?: string }).type === 'array' ? raw.split(',') : raw;
      problems.push(...this.#check(p.schema, value, `${operation.operationId}: ${p.in} parameter ${p.name}`));
    }
    return problems;
  }

  checkRequestBody(method: string, path: string, contentType: string, body: unknown): string[] {
    const operation = this.operation(method, path);
    const schema = operation.requestBody?.content?.[contentType]?.schema;
    if (!schema) return [`${operation.operationId}: request content type ${JSON.stringify(contentType)} is not in the spec`];
    return this.#check(schema, body, `${operation.operationId} request body`);
  }

  checkResponse(method: string, path: string, status: number, contentType: string, body: unknown): string[] {
    const operation = this.operation(method, path);
    const response = operation.responses[String(status)] ?? operation.responses.default;
    const schema = response?.content?.[contentType]?.schema;
    const where = `${operation.operationId} ${status} response`;
    if (!schema) return [`${where}: content type ${contentType} is not in the spec`];
    if (contentType === 'application/problem+json' && (body as { type?: unknown }).type === 'about:blank') {
      return this.#check(GENERIC_PROBLEM, body, where);
    }
    return this.#check(schema, body, where);
  }

  #check(schema: object, value: unknown, where: string): string[] {
    const validate = this.#validator(schema);
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => `${where}${e.instancePath} ${e.message ?? 'is invalid'} (${JSON.stringify(value).slice(0, 200)})`);
  }

  /** A schema from the file, its local `$ref`s pointed into the file itself. */
  #validator(schema: object): ValidateFunction {
    const source = JSON.stringify(schema).replaceAll('"#/components/', `"${SPEC_ID}#/components/`);
    let validate = this.#validators.get(source);
    if (!validate) {
      validate = this.#ajv.compile(JSON.parse(source) as object);
      this.#validators.set(source, validate);
    }
    return validate;
  }

  #deref<T>(node: T | { $ref: string }): T {
    const ref = (node as { $ref?: string }).$ref;
    if (!ref) return node as T;
    let target: unknown = this.#spec;
    for (const part of ref.replace(/^#\//, '').split('/')) {
      target = (target as Record<string, unknown>)[part.replaceAll('~1', '/').replaceAll('~0', '~')];
    }
    return target as T;
  }
}
