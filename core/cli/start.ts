import { Command, Option } from 'commander';
import type { Logger } from 'pino';
import { App, type StartOptions } from '../app.ts';
import { HubError } from '../errors.ts';

/** A second signal while stopping exits at once, with the shell's code for that signal. */
const SIGNAL_EXIT_CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };
/**
 * The stop gives up after this long (Redis away while deliveries settle), the
 * rest staying pending for another process: longer than the workers' grace
 * (5 s, then 1 s to settle what was cut), shorter than `docker stop`'s 10 s.
 */
const STOP_DEADLINE_MS = 9000;

/**
 * A long-running process (`hub start`, `hub worker`): signal handlers first,
 * so that a stop is graceful whatever the start is waiting for (Redis), then
 * the start. The last log line says that it stopped and what became of the
 * deliveries in flight.
 */
async function run(options: StartOptions): Promise<void> {
  try {
    await serve(options);
  } catch (err) {
    // 78 (EX_CONFIG): the configuration must change before a restart can help; systemd and supervisors can tell.
    if (err instanceof HubError && (err.code === 'HUB_ERR_CONFIG' || err.code === 'HUB_ERR_PLUGIN')) process.exitCode = 78;
    throw err;
  }
}

async function serve(options: StartOptions): Promise<void> {
  const app = await App.create();
  const { logger, redis, redisHealth } = app.cradle;
  const stopRequested = stopSignals(logger);
  // A Redis that can never work (a database it does not have) ends the process with that sentence.
  const fatal = new Promise<never>((_, reject) => redis.once('fatal', reject));
  fatal.catch(() => {});
  const starting = app.start(options);
  // Rejected with an AbortError when a stop comes while it waits for Redis; a real failure surfaces below.
  starting.catch(() => {});
  const first = await Promise.race([starting.then(() => 'started' as const), stopRequested, fatal]);
  if (first === 'started') {
    logger.info({ http: app.http?.port, workers: app.workers.map((w) => w.channel), down: [...app.down.keys()], hub: options.hub ?? true }, 'started');
    await Promise.race([stopRequested, fatal]);
  }
  const deadline = setTimeout(() => {
    const why = redisHealth.problem ? ` (${redisHealth.problem})` : '';
    logger.error(`stopped: could not finish within ${STOP_DEADLINE_MS / 1000} s${why}; what was in flight stays pending for another process`);
    process.exit(1);
  }, STOP_DEADLINE_MS);
  const { finished, cutOff } = await app.stop();
  clearTimeout(deadline);
  const cut = cutOff ? `; ${cutOff} still running after the grace period were cut and stay pending for another process` : '';
  const away = redisHealth.problem ? `; ${redisHealth.problem}: what was not settled stays pending for another process` : '';
  logger.info({ finished, cutOff }, `stopped: ${finished} ${finished === 1 ? 'delivery' : 'deliveries'} in flight finished${cut}${away}`);
  // Exit rather than return: a socket or timer a plugin left running must not keep the process alive. Log lines are
  // written synchronously (core/logger.ts), so the one above is out.
  process.exit(0);
}

/** Resolves on the first SIGTERM or SIGINT; a second one (not the same one again within a second) exits at once. */
function stopSignals(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let first: { signal: NodeJS.Signals; at: number } | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      if (!first) {
        first = { signal, at: Date.now() };
        logger.info({ signal }, 'stopping: deliveries in flight finish, the rest stays pending for another process');
        return resolve(signal);
      }
      // The same signal again within a second is one request delivered twice: under `npm start` a terminal's Ctrl-C,
      // or a supervisor signalling the whole process group (systemd's default KillMode), reaches node directly and
      // again forwarded by npm.
      if (signal === first.signal && Date.now() - first.at < 1000) return;
      logger.warn({ signal }, 'second signal while stopping: exiting now; deliveries in flight stay pending for another process');
      process.exit(SIGNAL_EXIT_CODES[signal] ?? 1);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
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
