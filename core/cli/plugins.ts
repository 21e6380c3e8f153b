import { Command } from 'commander';
import { App } from '../app.ts';
import { print } from './context.ts';

export function pluginsCommand(): Command {
  return new Command('plugins')
    .description('list the channel plugins found, and whether each can run here (and if not, why)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const app = await App.create({ failFast: true, env: { LOG_LEVEL: 'warn', ...process.env } });
      const rows = [...app.cradle.plugins.entries.values()].map((e) => ({
        name: e.plugin.name,
        description: e.plugin.description,
        source: e.source,
        state: e.settings.state,
        ...(e.settings.state === 'unconfigured' ? { reason: e.settings.reason } : {}),
      }));
      await app.container.dispose();
      print(rows, opts.json ?? false, () =>
        rows.map((r) => `${r.name.padEnd(10)} ${r.state === 'ready' ? 'ready       ' : 'not started '} ${r.reason ?? r.description}`).join('\n'),
      );
    });
}
