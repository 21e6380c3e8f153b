import { App } from '../app.ts';
import { HubError } from '../errors.ts';
import { describeTarget, redisTarget, whenReady } from '../redis/connect.ts';

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
    // Ready, or why not: the connection's own error ("connect ECONNREFUSED …"), or a database Redis does not have.
    await whenReady(redis).catch((err: Error) => {
      if (err instanceof HubError) throw err;
      throw new HubError('HUB_ERR_REDIS', `cannot reach Redis at ${redactor.redact(config.redis.sentinels || config.redis.clusterNodes ? describeTarget(redisTarget(config)) : config.redisUrl)} (${redactor.redact(err.message)}); start Redis or set REDIS_URL${config.redis.sentinels ? ' and REDIS_SENTINELS' : config.redis.clusterNodes ? ' and REDIS_CLUSTER_NODES' : ''}`);
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
