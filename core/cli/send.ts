import { Command, Option } from 'commander';
import { withApp } from './context.ts';

export function sendCommand(): Command {
  return new Command('send')
    .description('send a notification to one or more groups, as a producer would (XADD notify:in)')
    .argument('<to>', 'the group(s): "#admins" or "#admins,#users"')
    .argument('<body>', 'the message (HTML unless --format says otherwise)')
    .option('-s, --subject <subject>', 'a short title')
    .addOption(new Option('-f, --format <format>', 'how the body is written').choices(['html', 'text', 'markdown']))
    .option('--id <id>', 'an idempotency key: the same id within the dedupe window is not delivered again')
    .option('--channels <list>', 'limit delivery to these channels, e.g. matrix,email')
    .action(async (to: string, body: string, opts: { subject?: string; format?: string; id?: string; channels?: string }) => {
      await withApp(async (app) => {
        const fields = Object.entries({ to, body, ...opts }).filter(([, v]) => v !== undefined).flat() as string[];
        const id = await app.cradle.redis.xadd(app.cradle.keys.in, '*', ...fields);
        process.stdout.write(`${id}\n`);
      });
    });
}
