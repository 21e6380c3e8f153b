import type { HubConfig } from '../config/schema.ts';
import type { Env } from '../config/env.ts';
import type { TargetRules } from '../mapping/validate.ts';
import type { Redactor } from '../redactor.ts';
import { type DiscoveredPlugin, discoverPlugins } from './plugin-loader.ts';
import { type PluginSettings, resolvePluginSettings } from './plugin-settings.ts';

export interface PluginEntry extends DiscoveredPlugin {
  settings: PluginSettings;
}

/** Every installed plugin with its settings resolved: the channels the mapping may name, and which of them can run here. */
export class PluginRegistry {
  readonly entries: ReadonlyMap<string, PluginEntry>;

  constructor(entries: PluginEntry[]) {
    this.entries = new Map(entries.map((e) => [e.plugin.name, e]));
  }

  static async load(config: HubConfig, env: Env, redactor: Redactor, cwd?: string): Promise<PluginRegistry> {
    const discovered = await discoverPlugins({ dirs: [...config.plugins.dirs, ...config.plugins.externalDirs], modules: config.plugins.modules, ...(cwd ? { cwd } : {}) });
    return new PluginRegistry(
      discovered.map((d) => ({ ...d, settings: resolvePluginSettings(d.plugin, config.channels[d.plugin.name], env, redactor) })),
    );
  }

  get names(): ReadonlySet<string> {
    return new Set(this.entries.keys());
  }

  get targetRules(): ReadonlyMap<string, TargetRules> {
    return new Map(
      [...this.entries].map(([name, { plugin }]) => [
        name,
        { validate: (t: string) => plugin.validateTarget(t), normalize: (t: string) => plugin.normalizeTarget?.(t) ?? t },
      ]),
    );
  }

  /** The channels whose settings are complete: the ones `hub start` runs workers for. */
  get configured(): string[] {
    return this.#named((state) => state === 'ready');
  }

  /** The channels the operator meant to run (settings complete, or given and wrong): `hub start` starts them or reports them down. */
  get wanted(): string[] {
    return this.#named((state) => state !== 'unconfigured');
  }

  #named(keep: (state: PluginSettings['state']) => boolean): string[] {
    return [...this.entries.values()].filter((e) => keep(e.settings.state)).map((e) => e.plugin.name);
  }
}
