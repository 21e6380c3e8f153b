import type { HubConfigInput } from './schema.ts';

/**
 * Declare the hub's configuration in `hub.config.ts`. Every key is optional
 * and has a default; environment variables override the file (see
 * CONTRACT §6), so that a container needs no file at all. Secrets never go
 * here: tokens and passwords are read only from the environment.
 */
export function defineConfig(config: HubConfigInput): HubConfigInput {
  return config;
}

export type { HubConfig, HubConfigInput } from './schema.ts';
