/**
 * Checks requests and responses of the local Slack server against the
 * schemas of the methods it serves (./schemas.ts, written from Slack's
 * published Web API description): the arguments (names, types, required
 * ones) and the success and error bodies.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { SLACK_METHODS, type SlackMethod } from './schemas.ts';

// ajv-formats is CommonJS with a default export that TypeScript's nodenext view does not see.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export class SlackSpec {
  readonly #ajv: Ajv;
  readonly #validators = new Map<string, ValidateFunction>();

  constructor() {
    this.#ajv = new Ajv({ strict: true, allErrors: true, logger: false });
    addFormats(this.#ajv);
  }

  /** The description of a Web API method this project uses, if it is one. */
  operation(method: string): SlackMethod | undefined {
    return Object.hasOwn(SLACK_METHODS, method) ? SLACK_METHODS[method] : undefined;
  }

  /**
   * Violations of a request's arguments: an unknown name, a missing required
   * one, a wrong type. Form values are strings, so booleans arrive as
   * `true`/`false`/`1`/`0`. `token` is accepted as a form field: Slack takes
   * it there as well as in the Authorization header.
   */
  checkRequest(method: string, args: Record<string, unknown>, form: boolean): string[] {
    const operation = this.operation(method);
    if (!operation) return [`${method}: not a method of the Web API spec`];
    const problems: string[] = [];
    for (const [name, p] of Object.entries(operation.args)) {
      if (p.required && args[name] === undefined) problems.push(`${method}: required parameter ${name} is missing`);
    }
    for (const [name, value] of Object.entries(args)) {
      if (name === 'token') continue;
      const p = Object.hasOwn(operation.args, name) ? operation.args[name] : undefined;
      if (!p) {
        problems.push(`${method}: parameter ${name} is not in the spec`);
        continue;
      }
      const ok = p.type === 'boolean'
        ? typeof value === 'boolean' || (form && ['true', 'false', '1', '0'].includes(String(value)))
        : typeof value === 'string';
      if (!ok) problems.push(`${method}: parameter ${name} should be a ${p.type}, got ${JSON.stringify(value)}`);
    }
    return problems;
  }

  /** Violations of a response body against the method's success (`ok: true`) or error schema. */
  checkResponse(method: string, body: Record<string, unknown>): string[] {
    const validate = this.#responseValidator(method, body.ok === true ? 'success' : 'error');
    if (!validate) return [`${method}: not a method of the Web API spec`];
    if (validate(body)) return [];
    return (validate.errors ?? []).map((e) => `${method} response${e.instancePath} ${e.message ?? 'is invalid'} (${JSON.stringify(body).slice(0, 200)})`);
  }

  #responseValidator(method: string, kind: 'success' | 'error'): ValidateFunction | undefined {
    const key = `${method} ${kind}`;
    const operation = this.operation(method);
    if (!operation) return undefined;
    let validate = this.#validators.get(key);
    if (!validate) {
      validate = this.#ajv.compile(operation[kind]);
      this.#validators.set(key, validate);
    }
    return validate;
  }
}
