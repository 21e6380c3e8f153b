import { Command } from 'commander';
import { App } from '../app.ts';
import { whenReady } from '../redis/connect.ts';
import { channelsDown } from '../runtime/channel-fault.ts';
import { print } from './context.ts';

/** `invalid`: settings given and wrong; `down`: a running process could not start it. Both wait in their streams. */
const LABELS = { ready: 'ready', unconfigured: 'not started', invalid: 'down', down: 'down' } as const;

export function pluginsCommand(): Command {
  return new Command('plugins')
    .description('list the channel plugins found, and whether each can run here (and if not, why)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const app = await App.create({ failFast: true, env: { LOG_LEVEL: 'warn', ...process.env } });
      const { plugins, redis, keys, redactor } = app.cradle;
      // What running processes report (a channel that could not start); without Redis, what the settings say.
      const reported = await whenReady(redis)
        .then(() => channelsDown(redis, keys, plugins.names))
        .catch(() => new Map<string, string>());
      const rows = [...plugins.entries.values()].map((e) => {
        const down = reported.get(e.plugin.name);
        const state: keyof typeof LABELS = down && e.settings.state === 'ready' ? 'down' : e.settings.state;
        const reason = e.settings.state === 'ready' ? down : e.settings.reason;
        return { name: e.plugin.name, description: e.plugin.description, source: e.source, state, ...(reason ? { reason: redactor.redact(reason) } : {}) };
      });
      await app.container.dispose();
      print(rows, opts.json ?? false, () => rows.map((r) => `${r.name.padEnd(10)} ${LABELS[r.state].padEnd(12)}${r.reason ?? r.description}`).join('\n'));
    });
}
