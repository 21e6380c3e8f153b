import { App } from '../app.ts';
import { HubError } from '../errors.ts';

/**
 * A hub graph for a one-shot command: fails fast when Redis is away, logs only
 * warnings, and is always disposed.
 */
export async function withApp<T>(run: (app: App) => Promise<T>): Promise<T> {
  const app = await App.create({ failFast: true, env: { LOG_LEVEL: 'warn', ...process.env } });
  try {
    await app.cradle.redis.ping().catch((err: Error) => {
      throw new HubError('HUB_ERR_REDIS', `cannot reach Redis at ${app.cradle.redactor.redact(app.cradle.config.redisUrl)} (${err.message}); start Redis or set REDIS_URL`);
    });
    return await run(app);
  } finally {
    await app.container.dispose();
  }
}

export function print(value: unknown, json: boolean, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}
