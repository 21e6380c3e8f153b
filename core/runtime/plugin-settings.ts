import { describeIssues } from '../config/load-config.ts';
import { type Env, envSource, readEnv } from '../config/env.ts';
import { HubError } from '../errors.ts';
import type { ChannelPlugin } from '../plugin-api.ts';
import type { Redactor } from '../redactor.ts';

export type PluginSettings =
  | { state: 'ready'; settings: object }
  | { state: 'unconfigured'; reason: string }
  | { state: 'invalid'; reason: string };

/**
 * A channel's settings: `channels.<name>` of the config file overlaid with the
 * plugin's environment variables. A channel none of whose variables are set
 * and whose settings do not validate is simply not started; one that is half
 * configured or wrong is `invalid`: the operator meant to run it, so it is
 * reported as down (its deliveries wait), while the other channels run.
 * A secret in the config file is the one error that stops everything: it is
 * a fault of the config file, which may be shared or committed.
 */
export function resolvePluginSettings(
  plugin: ChannelPlugin<object>,
  fromFile: Record<string, unknown> = {},
  env: Env,
  redactor: Redactor,
): PluginSettings {
  const envNames = (plugin.settings.env ?? {}) as Record<string, string>;
  const secrets = (plugin.settings.secrets ?? []) as string[];
  for (const key of secrets) {
    if (key in fromFile) {
      throw new HubError('HUB_ERR_CONFIG', `channels.${plugin.name}.${key}: secrets are read only from the environment; remove it from the config file and set ${envNames[key] ?? 'its variable'}`);
    }
  }
  const input: Record<string, unknown> = { ...fromFile };
  const sources = new Map<string, string>();
  for (const [key, variable] of Object.entries(envNames)) {
    const value = readEnv(env, variable);
    if (value === undefined) continue;
    input[key] = value;
    sources.set(key, `from ${envSource(env, variable)}`);
  }
  knowSecrets(secrets, input, redactor);
  const parsed = plugin.settings.schema.safeParse(input);
  if (parsed.success) return { state: 'ready', settings: parsed.data };
  const hints = new Map(sources);
  for (const [key, variable] of Object.entries(envNames)) if (!hints.has(key)) hints.set(key, `set ${variable}`);
  const unset = parsed.error.issues.map((issue) => String(issue.path[0])).filter((key) => envNames[key] !== undefined && input[key] === undefined);
  // Nothing set and only settings missing: the operator does not use this channel.
  if (sources.size === 0 && unset.length === parsed.error.issues.length) {
    return { state: 'unconfigured', reason: `not configured: set ${[...new Set(unset.map((key) => envNames[key]))].join(', ')}` };
  }
  const [title, ...problems] = describeIssues(parsed.error, hints, `settings of channel ${plugin.name}`, `channels.${plugin.name}.`).split('\n');
  return { state: 'invalid', reason: `${title!.replace(/:$/, '')}: ${problems.map((p) => p.trim()).join('; ')}` };
}

/** Make the redactor know the values of the secret settings `keys` (a URL's password on its own as well). */
export function knowSecrets(keys: readonly string[], values: object, redactor: Redactor): void {
  for (const key of keys) {
    const value = (values as Record<string, unknown>)[key];
    if (typeof value !== 'string') continue;
    redactor.add(value);
    redactor.addUrl(value);
  }
}
