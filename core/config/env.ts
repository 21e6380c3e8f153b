import { readFileSync } from 'node:fs';
import { HubError } from '../errors.ts';

export type Env = Record<string, string | undefined>;

/**
 * A variable's value, or the content of the file named by `<NAME>_FILE`
 * (Docker and Kubernetes secrets), trailing newline removed.
 */
export function readEnv(env: Env, name: string): string | undefined {
  const direct = env[name];
  if (direct !== undefined && direct !== '') return direct;
  const file = env[`${name}_FILE`];
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new HubError('HUB_ERR_CONFIG', `${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); point it at a readable file holding the value of ${name}`);
  }
}

/** The variable a value was read from: `NAME`, or `NAME_FILE` when it came from a file. */
export function envSource(env: Env, name: string): string {
  return env[name] !== undefined && env[name] !== '' ? name : `${name}_FILE`;
}
