/**
 * Checks the local X server's traffic against the schemas of the operations
 * it serves (./schemas.ts, written from X's published OpenAPI description):
 * path and query parameters, request bodies, and response bodies by status
 * and content type.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { GENERIC_PROBLEM, type JsonSchema, X_OPERATIONS, type XOperation } from './schemas.ts';

// ajv-formats is CommonJS with a default export that TypeScript's nodenext view does not see.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export class XSpec {
  readonly #ajv: Ajv;
  readonly #validators = new Map<JsonSchema, ValidateFunction>();

  constructor() {
    this.#ajv = new Ajv({ strict: true, strictRequired: false, allowUnionTypes: true, allErrors: true, logger: false });
    addFormats(this.#ajv);
  }

  operation(method: string, path: string): XOperation {
    const key = `${method.toUpperCase()} ${path}`;
    const operation = Object.hasOwn(X_OPERATIONS, key) ? X_OPERATIONS[key] : undefined;
    if (!operation) throw new Error(`${method} ${path} is not in the X spec`);
    return operation;
  }

  /** Path and query parameters: unknown names, missing required ones, values against their schemas. */
  checkParameters(method: string, path: string, values: { path: Record<string, string>; query: URLSearchParams }): string[] {
    const operation = this.operation(method, path);
    const problems: string[] = [];
    for (const name of new Set(values.query.keys())) {
      if (!operation.parameters.some((p) => p.in === 'query' && p.name === name)) problems.push(`${operation.operationId}: query parameter ${name} is not in the spec`);
    }
    for (const p of operation.parameters) {
      const raw = p.in === 'path' ? values.path[p.name] : values.query.get(p.name) ?? undefined;
      if (raw === undefined) {
        if (p.required) problems.push(`${operation.operationId}: required ${p.in} parameter ${p.name} is missing`);
        continue;
      }
      // Arrays are sent form-style, not exploded: `user.fields=id,name`.
      const value = p.schema.type === 'array' ? raw.split(',') : raw;
      problems.push(...this.#check(p.schema, value, `${operation.operationId}: ${p.in} parameter ${p.name}`));
    }
    return problems;
  }

  checkRequestBody(method: string, path: string, contentType: string, body: unknown): string[] {
    const operation = this.operation(method, path);
    const schema = operation.requestBody?.[contentType];
    if (!schema) return [`${operation.operationId}: request content type ${JSON.stringify(contentType)} is not in the spec`];
    return this.#check(schema, body, `${operation.operationId} request body`);
  }

  checkResponse(method: string, path: string, status: number, contentType: string, body: unknown): string[] {
    const operation = this.operation(method, path);
    const response = operation.responses[String(status)] ?? operation.responses.default;
    const schema = response?.[contentType];
    const where = `${operation.operationId} ${status} response`;
    if (!schema) return [`${where}: content type ${contentType} is not in the spec`];
    if (contentType === 'application/problem+json' && (body as { type?: unknown }).type === 'about:blank') {
      return this.#check(GENERIC_PROBLEM, body, where);
    }
    return this.#check(schema, body, where);
  }

  #check(schema: JsonSchema, value: unknown, where: string): string[] {
    let validate = this.#validators.get(schema);
    if (!validate) {
      validate = this.#ajv.compile(schema);
      this.#validators.set(schema, validate);
    }
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => `${where}${e.instancePath} ${e.message ?? 'is invalid'} (${JSON.stringify(value).slice(0, 200)})`);
  }
}
