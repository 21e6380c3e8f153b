#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { HubError } from '../errors.ts';
import { deadCommand } from './dead.ts';
import { mappingCommand } from './mapping.ts';
import { pluginsCommand } from './plugins.ts';
import { sendCommand } from './send.ts';
import { startCommand, workerCommand } from './start.ts';
import { statusCommand } from './status.ts';

const program = new Command('hub')
  .description('notification-hub: one XADD in, every person of a group notified on Matrix, email, Slack, X …')
  .showHelpAfterError('(run hub --help for the commands)')
  .exitOverride();

for (const command of [startCommand(), workerCommand(), sendCommand(), statusCommand(), deadCommand(), mappingCommand(), pluginsCommand()]) {
  program.addCommand(command);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const message = err instanceof HubError ? err.message : `unexpected error: ${(err as Error).stack ?? String(err)}`;
  process.stderr.write(`hub: ${message}\n`);
  process.exit(1);
}
