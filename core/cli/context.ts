import { App } from '../app.ts';
import { HubError } from '../errors.ts';

/**
 * A hub graph for a one-shot command: fails fast when Redis is away, logs only
 * warnings, and is always disposed. `check` runs before Redis is reached, so
 * that input which is wrong anyway is refused at once.
 */
export async function withApp<T>(run: (app: App) => Promise<T>, check?: (app: App) => void): Promise<T> {
  const app = await App.create({ failFast: true, env: { LOG_LEVEL: 'warn', ...process.env } });
  try {
    check?.(app);
    const { redis, redactor, config } = app.cradle;
    // The command's own error says only that retries ran out; the connection's error says why ("connect ECONNREFUSED …").
    let cause: string | undefined;
    redis.on('error', (err: Error) => (cause = err.message));
    await redis.ping().catch((err: Error) => {
      throw new HubError('HUB_ERR_REDIS', `cannot reach Redis at ${redactor.redact(config.redisUrl)} (${redactor.redact(cause ?? err.message)}); start Redis or set REDIS_URL`);
    });
    return await run(app);
  } finally {
    await app.container.dispose();
  }
}

export function print(value: unknown, json: boolean, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** A commander option parser for a count: `--limit 10`, not `--limit ten`. */
export function positiveInteger(option: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1) throw new HubError('HUB_ERR_USAGE', `${option}: expected a whole number ≥ 1, got ${JSON.stringify(value)}`);
    return n;
  };
}
