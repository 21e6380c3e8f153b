import { existsSync, readdirSync, statSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HubError } from '../errors.ts';
import { type ChannelPlugin, PLUGIN_API_VERSION } from '../plugin-api.ts';

export interface DiscoveredPlugin {
  plugin: ChannelPlugin<object>;
  /** Where it was loaded from, for errors and `hub plugins`. */
  source: string;
}

const INDEX_FILES = ['index.ts', 'index.js'];

/** The specifier every plugin imports the API by (package.json `exports`). */
export const PLUGIN_API_SPECIFIER = 'notification-hub/plugin-api';

/**
 * The file of the plugin API this hub is running: `core/plugin-api.ts` in a
 * checkout, `dist/core/plugin-api.js` once built (hence the loader's own extension).
 */
export const PLUGIN_API_URL = new URL(`../plugin-api${extname(fileURLToPath(import.meta.url))}`, import.meta.url).href;

/*
 * Why a resolve hook rather than a symlink or a dependency: a plugin in a
 * HUB_PLUGIN_DIRS folder (or an npm package) has no `notification-hub` in its
 * own node_modules, and Node's package self-reference only works inside this
 * package. Mapping the one specifier to the running hub's own file makes it
 * resolvable from anywhere without writing to the plugin's folder, and it
 * guarantees a single copy of the API: a plugin that bundled or installed its
 * own copy would throw RetryableError/PermanentError classes that the
 * runtime's `instanceof` checks do not recognise. In-thread and synchronous
 * (`registerHooks`), so it is in force before the first plugin import.
 */
registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === PLUGIN_API_SPECIFIER) return { url: PLUGIN_API_URL, shortCircuit: true };
    if (resolvingFrom !== undefined && context.parentURL === import.meta.url) return nextResolve(specifier, { ...context, parentURL: resolvingFrom });
    return nextResolve(specifier, context);
  },
});

/** Set only during {@link resolvePackage}'s synchronous resolve: the project file whose node_modules a package is looked up from. */
let resolvingFrom: string | undefined;

/**
 * The entry file of the npm package `name` as installed for the project in
 * `cwd` (its node_modules, or a parent folder's), else as installed beside the
 * hub (its checkout, the Docker image). Node's own resolver does the work,
 * with the package's `exports` and the `import` condition; `import.meta.resolve`
 * takes no other parent, hence the hook above.
 */
function resolvePackage(name: string, cwd: string): string {
  resolvingFrom = pathToFileURL(join(cwd, 'package.json')).href;
  try {
    return import.meta.resolve(name);
  } catch {
    // Not in the project: beside the hub, below.
  } finally {
    resolvingFrom = undefined;
  }
  try {
    return import.meta.resolve(name);
  } catch (err) {
    const why = (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' ? 'is not installed' : `cannot be resolved (${(err as Error).message})`;
    throw new HubError('HUB_ERR_PLUGIN', `plugin package ${name} ${why}: run npm install ${name} in ${cwd}, or remove it from plugins.modules`, { cause: err });
  }
}

/**
 * Every plugin of the configured folders (one sub-folder each) and modules,
 * checked before anything runs: a folder without an index, a missing default
 * export, a wrong API version or a name that clashes fails here, naming the
 * folder.
 */
export async function discoverPlugins(options: { dirs: string[]; modules: string[]; cwd?: string }): Promise<DiscoveredPlugin[]> {
  const cwd = options.cwd ?? process.cwd();
  const sources: Array<{ source: string; folder?: string; url?: string }> = [];
  for (const dir of options.dirs) {
    const root = resolve(cwd, dir);
    if (!existsSync(root)) throw new HubError('HUB_ERR_PLUGIN', `plugins folder ${dir} does not exist; create it or remove it from plugins.dirs (or HUB_PLUGIN_DIRS)`);
    for (const name of readdirSync(root).sort()) {
      const folder = join(root, name);
      if (name.startsWith('.') || !statSync(folder).isDirectory()) continue;
      const index = INDEX_FILES.map((f) => join(folder, f)).find((f) => existsSync(f));
      if (!index) throw new HubError('HUB_ERR_PLUGIN', `plugin folder ${folder} has no index.ts or index.js; a plugin folder needs one that default-exports definePlugin({...})`);
      sources.push({ source: index, folder: name });
    }
  }
  for (const module of options.modules) {
    const isPath = module.startsWith('.') || module.startsWith('/');
    sources.push(isPath ? { source: resolve(cwd, module) } : { source: module, url: resolvePackage(module, cwd) });
  }

  const plugins: DiscoveredPlugin[] = [];
  for (const { source, folder, url } of sources) {
    const plugin = checkPlugin(await importPlugin(source, url), source);
    if (folder !== undefined && plugin.name !== folder) {
      throw new HubError('HUB_ERR_PLUGIN', `plugin ${source}: it is named "${plugin.name}" but its folder is "${folder}"; a plugin's name must be its folder's name`);
    }
    const clash = plugins.find((p) => p.plugin.name === plugin.name);
    if (clash) throw new HubError('HUB_ERR_PLUGIN', `plugin ${source}: the name "${plugin.name}" is already taken by ${clash.source}; rename one of them`);
    plugins.push({ plugin, source });
  }
  return plugins;
}

async function importPlugin(source: string, url = pathToFileURL(source).href): Promise<unknown> {
  try {
    return ((await import(url)) as { default?: unknown }).default;
  } catch (err) {
    throw new HubError('HUB_ERR_PLUGIN', `plugin ${source}: cannot be loaded: ${(err as Error).message}`, { cause: err });
  }
}

function checkPlugin(value: unknown, source: string): ChannelPlugin<object> {
  const fail = (problem: string) => new HubError('HUB_ERR_PLUGIN', `plugin ${source}: ${problem}`);
  if (value === undefined) throw fail('has no default export; export default definePlugin({...})');
  if (typeof value !== 'object' || value === null) throw fail('its default export is not a plugin object; export default definePlugin({...})');
  const plugin = value as Partial<ChannelPlugin<object>>;
  if (typeof plugin.name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(plugin.name)) {
    throw fail(`its name ${JSON.stringify(plugin.name)} is not a lower-case channel name such as "matrix"`);
  }
  if (plugin.apiVersion !== PLUGIN_API_VERSION) {
    throw fail(`it was written for plugin API ${String(plugin.apiVersion)}, this hub implements ${PLUGIN_API_VERSION}`);
  }
  if (typeof plugin.settings?.schema?.safeParse !== 'function') throw fail('settings.schema is not a zod schema');
  for (const fn of ['validateTarget', 'createSender'] as const) {
    if (typeof plugin[fn] !== 'function') throw fail(`${fn} is not a function`);
  }
  return plugin as ChannelPlugin<object>;
}
