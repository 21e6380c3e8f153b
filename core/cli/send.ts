import { Command } from 'commander';
import type { App } from '../app.ts';
import { HubError } from '../errors.ts';
import { parseEntry } from '../ingress/parse-entry.ts';
import { withApp } from './context.ts';

/**
 * The hub's own check of an entry, run before the XADD: what it would
 * dead-letter anyway (a group without #, a body over the limit, an unknown
 * format or channel) is refused here, at once. Only the mapping (is the group
 * known?) is left to the hub.
 */
function refuseWhatTheHubWould(app: App, fields: Record<string, string>): void {
  const { config, channelNames } = app.cradle;
  const parsed = parseEntry(fields, { maxBodyBytes: config.ingress.maxBodyBytes, maxGroups: config.ingress.maxGroups, channels: channelNames });
  if (!parsed.ok) throw new HubError('HUB_ERR_USAGE', `not sent: ${parsed.reason}`);
}

export function sendCommand(): Command {
  return new Command('send')
    .description('send a notification to one or more groups, as a producer would (XADD notify:in)')
    .argument('<to>', 'the group(s): "#admins" or "#admins,#users"')
    .argument('<body>', 'the message (HTML unless --format says otherwise)')
    .option('-s, --subject <subject>', 'a short title')
    .option('-f, --format <format>', 'how the body is written: html (the default), text or markdown')
    .option('--id <id>', 'an idempotency key: the same id within the dedupe window is not delivered again')
    .option('--channels <list>', 'limit delivery to these channels, e.g. matrix,email')
    .option('--key <key>', 'what repeats of this are called, e.g. orders-api:5xx: to a group with throttle, they are folded into a digest')
    .action(async (to: string, body: string, opts: { subject?: string; format?: string; id?: string; channels?: string; key?: string }) => {
      const fields = Object.fromEntries(Object.entries({ to, body, ...opts }).filter(([, v]) => v !== undefined)) as Record<string, string>;
      await withApp(
        async (app) => {
          const id = await app.cradle.redis.xadd(app.cradle.keys.in, '*', ...Object.entries(fields).flat());
          process.stdout.write(`${id}\n`);
        },
        (app) => refuseWhatTheHubWould(app, fields),
      );
    });
}
