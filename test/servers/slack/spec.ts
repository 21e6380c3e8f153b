/**
 * Checks requests and responses of the local Slack server against Slack's
 * published Web API spec (../shared/specs/slack/web-api/slack_web_openapi_v2.json,
 * Swagger 2.0): the form parameters an operation declares (names, types,
 * required ones) and the JSON schema of its success and error responses.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

const SPEC_FILE = new URL('../../../../shared/specs/slack/web-api/slack_web_openapi_v2.json', import.meta.url);
const SPEC_ID = 'slack-web-api.json';

/**
 * Errors today's Slack documents for these methods
 * (https://docs.slack.dev/reference/methods/chat.postMessage) that the 2020
 * spec's error enums lack, `ratelimited` being the body of every 429 (see the
 * spec folder's README). Any other error outside the enum is a violation.
 */
const NEWER_ERRORS: Record<string, string[]> = {
  'chat.postMessage': [
    'ratelimited', 'restricted_action', 'token_revoked', 'missing_scope', 'invalid_arguments',
    'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout',
  ],
  'auth.test': ['ratelimited', 'missing_scope', 'internal_error', 'fatal_error', 'service_unavailable'],
};

interface Parameter { name: string; in: string; type?: string; required?: boolean }
interface Operation { parameters?: Parameter[]; responses: Record<string, { schema?: object }> }
interface SwaggerSpec { paths: Record<string, Record<string, Operation>> }

// ajv-formats is CommonJS with a default export that TypeScript's nodenext view does not see.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export class SlackSpec {
  readonly #spec: SwaggerSpec;
  readonly #ajv: Ajv;
  readonly #validators = new Map<string, ValidateFunction>();

  constructor() {
    this.#spec = JSON.parse(readFileSync(SPEC_FILE, 'utf8')) as SwaggerSpec;
    this.#ajv = new Ajv({ strict: false, allErrors: true, logger: false });
    addFormats(this.#ajv);
    this.#ajv.addSchema(this.#spec as object, SPEC_ID);
  }

  /** The operation of a Web API method, whatever HTTP method the spec files it under (the SDK always POSTs). */
  operation(method: string): Operation | undefined {
    const path = this.#spec.paths[`/${method}`];
    return path?.post ?? path?.get;
  }

  /**
   * Violations of a request's arguments: an unknown name, a missing required
   * one, a wrong type. Form values are strings, so booleans arrive as
   * `true`/`false`/`1`/`0`. `token` is accepted as a form field: the spec
   * models it as a header parameter, and real clients send it either way.
   */
  checkRequest(method: string, args: Record<string, unknown>, form: boolean): string[] {
    const operation = this.operation(method);
    if (!operation) return [`${method}: not a method of the Web API spec`];
    const params = new Map((operation.parameters ?? []).filter((p) => p.in === 'formData').map((p) => [p.name, p]));
    const problems: string[] = [];
    for (const p of params.values()) {
      if (p.required && args[p.name] === undefined) problems.push(`${method}: required parameter ${p.name} is missing`);
    }
    for (const [name, value] of Object.entries(args)) {
      if (name === 'token') continue;
      const p = params.get(name);
      if (!p) {
        problems.push(`${method}: parameter ${name} is not in the spec`);
        continue;
      }
      const ok = p.type === 'boolean'
        ? typeof value === 'boolean' || (form && ['true', 'false', '1', '0'].includes(String(value)))
        : p.type === 'string' ? typeof value === 'string' : true;
      if (!ok) problems.push(`${method}: parameter ${name} should be a ${p.type}, got ${JSON.stringify(value)}`);
    }
    return problems;
  }

  /** Violations of a response body against the operation's success (`ok: true`) or error schema. */
  checkResponse(method: string, body: { ok?: unknown }): string[] {
    const validate = this.#responseValidator(method, body.ok === true ? '200' : 'default');
    if (!validate) return [`${method}: the spec has no ${body.ok === true ? 'success' : 'error'} schema`];
    if (validate(body)) return [];
    return (validate.errors ?? []).map((e) => `${method} response${e.instancePath} ${e.message ?? 'is invalid'} (${JSON.stringify(body).slice(0, 200)})`);
  }

  #responseValidator(method: string, status: '200' | 'default'): ValidateFunction | undefined {
    const key = `${method} ${status}`;
    const cached = this.#validators.get(key);
    if (cached) return cached;
    const schema = this.operation(method)?.responses[status]?.schema;
    if (!schema) return undefined;
    // Refer into the spec document so that its #/definitions resolve; widen the error enum by NEWER_ERRORS.
    const copy = JSON.parse(JSON.stringify(schema).replaceAll('"#/definitions/', `"${SPEC_ID}#/definitions/`)) as {
      properties?: { error?: { enum?: string[] } };
    };
    const errorEnum = copy.properties?.error?.enum;
    if (status === 'default' && errorEnum) errorEnum.push(...(NEWER_ERRORS[method] ?? []));
    const validate = this.#ajv.compile(copy);
    this.#validators.set(key, validate);
    return validate;
  }
}
