#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { deadCommand } from './dead.ts';
import { explain } from './explain-error.ts';
import { mappingCommand } from './mapping.ts';
import { pluginsCommand } from './plugins.ts';
import { sendCommand } from './send.ts';
import { startCommand, workerCommand } from './start.ts';
import { statusCommand } from './status.ts';

const program = new Command('hub')
  .description('notification-hub: one XADD in, every person of a group notified on Matrix, email, Slack, X …')
  .version(packageJson.version, '-V, --version', 'print the version')
  .addHelpText('after', '\nThere is no default command: `hub start` runs the hub and its channels.');

for (const command of [startCommand(), workerCommand(), sendCommand(), statusCommand(), deadCommand(), mappingCommand(), pluginsCommand()]) {
  program.addCommand(command);
}

/**
 * Commander's own errors (unknown command or option, missing argument) as
 * sentences like ours, on every subcommand: `addCommand` does not pass these
 * settings down.
 */
function sayErrorsLikeTheHub(command: Command, path: string): void {
  command
    .exitOverride()
    .showHelpAfterError(`(${path} --help says how to use it)`)
    .configureOutput({ outputError: (text, write) => write(`hub: ${text.replace(/^error: /, '')}`) });
  for (const sub of command.commands) sayErrorsLikeTheHub(sub, `${path} ${sub.name()}`);
}
sayErrorsLikeTheHub(program, 'hub');

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.stderr.write(`hub: ${explain(err, process.env.HUB_DEBUG)}\n`);
  process.exit(1);
}
