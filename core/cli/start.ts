import { Command, Option } from 'commander';
import { App, type StartOptions } from '../app.ts';
import { HubError } from '../errors.ts';

async function run(options: StartOptions): Promise<void> {
  const app = await App.create();
  const { logger } = app.cradle;
  await app.start(options);
  logger.info({ http: app.http?.port, workers: app.workers.map((w) => w.channel), hub: options.hub ?? true }, 'started');
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping: deliveries in flight finish, the rest stays pending for another process');
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await app.stop();
}

const concurrency = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new HubError('HUB_ERR_USAGE', `--concurrency: expected a whole number ≥ 1, got ${JSON.stringify(value)}`);
  return n;
};

export function startCommand(): Command {
  return new Command('start')
    .description('run the hub and the workers of every configured channel in this process (what npm start runs)')
    .addOption(new Option('--only <role>', 'run only this role').choices(['hub']))
    .action(async (opts: { only?: 'hub' }) => run(opts.only === 'hub' ? { hub: true, channels: [] } : {}));
}

export function workerCommand(): Command {
  return new Command('worker')
    .description('run workers of one channel only (as many processes as wanted, on any machine sharing the Redis)')
    .argument('<channel>', 'the channel plugin, e.g. matrix')
    .option('--concurrency <n>', 'deliveries in flight at once', concurrency)
    .action(async (channel: string, opts: { concurrency?: number }) =>
      run({ hub: false, channels: [channel], ...(opts.concurrency ? { concurrency: opts.concurrency } : {}) }),
    );
}
