import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { HubError } from '../errors.ts';
import { type Env, envSource, readEnv } from './env.ts';
import { ENV_OVERRIDES, type HubConfig, type HubConfigInput, hubConfigSchema } from './schema.ts';

/** `hub.config.ts` (or `.js` once compiled) in the working directory, or the file `HUB_CONFIG` names. */
export async function loadConfigFile(env: Env = process.env, cwd = process.cwd()): Promise<HubConfigInput> {
  const named = env.HUB_CONFIG;
  const candidates = named ? [resolve(cwd, named)] : ['hub.config.ts', 'hub.config.js'].map((f) => resolve(cwd, f));
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    if (named) throw new HubError('HUB_ERR_CONFIG', `HUB_CONFIG: ${named} does not exist; name an existing config file or unset HUB_CONFIG`);
    return {};
  }
  try {
    const module = (await import(pathToFileURL(file).href)) as { default?: HubConfigInput };
    return module.default ?? {};
  } catch (err) {
    throw new HubError('HUB_ERR_CONFIG', `${file}: cannot load it: ${(err as Error).message}`, { cause: err });
  }
}

/** The config file overlaid with the environment, validated; an error names the bad key and what it expected. */
export function resolveConfig(fileConfig: HubConfigInput, env: Env = process.env): HubConfig {
  const merged = structuredClone(fileConfig) as Record<string, unknown>;
  const sources = new Map<string, string>();
  for (const [name, path] of Object.entries(ENV_OVERRIDES)) {
    const value = readEnv(env, name);
    if (value === undefined) continue;
    setPath(merged, path, value);
    sources.set(path, `from ${envSource(env, name)}`);
  }
  for (const [path, variable] of [['redisUrl', 'REDIS_URL'], ['mapping.couchdbUrl', 'COUCHDB_URL']] as const) {
    if (!sources.has(path) && hasPassword(getPath(merged, path))) {
      throw new HubError('HUB_ERR_CONFIG', `${path}: a password does not belong in the config file; set ${variable} (or ${variable}_FILE) in the environment instead`);
    }
  }
  if (!sources.has('redis.sentinelPassword') && getPath(merged, 'redis.sentinelPassword') !== undefined) {
    throw new HubError('HUB_ERR_CONFIG', 'redis.sentinelPassword: a password does not belong in the config file; set REDIS_SENTINEL_PASSWORD (or REDIS_SENTINEL_PASSWORD_FILE) in the environment instead');
  }
  if (!sources.has('httpIngress.tokens') && getPath(merged, 'httpIngress.tokens') !== undefined) {
    throw new HubError('HUB_ERR_CONFIG', 'httpIngress.tokens: producer tokens do not belong in the config file; set HUB_INGRESS_TOKENS (or HUB_INGRESS_TOKENS_FILE) in the environment instead');
  }
  if (!sources.has('console.token') && getPath(merged, 'console.token') !== undefined) {
    throw new HubError('HUB_ERR_CONFIG', 'console.token: a token does not belong in the config file; set HUB_CONSOLE_TOKEN (or HUB_CONSOLE_TOKEN_FILE) in the environment instead');
  }
  const parsed = hubConfigSchema.safeParse(merged);
  if (!parsed.success) throw new HubError('HUB_ERR_CONFIG', describeIssues(parsed.error, sources));
  return parsed.data;
}

export async function loadConfig(env: Env = process.env, cwd = process.cwd()): Promise<HubConfig> {
  return resolveConfig(await loadConfigFile(env, cwd), env);
}

/** `delivery.concurrency: expected a whole number (from HUB_CONCURRENCY)`; `hints` maps a path to the words in parentheses. */
export function describeIssues(error: z.ZodError, hints: Map<string, string> = new Map(), title = 'config', pathPrefix = ''): string {
  const lines = error.issues.map((issue) => {
    const path = issue.path.join('.');
    const hint = hints.get(path) ?? hints.get(String(issue.path[0]));
    return `${pathPrefix}${path}: ${issue.message}${hint ? ` (${hint})` : ''}`;
  });
  return `invalid ${title}:\n  ${lines.join('\n  ')}`;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts.at(-1)!] = value;
}

function getPath(target: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], target);
}

function hasPassword(url: unknown): boolean {
  if (typeof url !== 'string') return false;
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}
