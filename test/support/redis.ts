import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The ACL rule the README gives (`SETUSER hub on >… …`), for `prefix` and `password`: tests make their users from it. */
export function readmeAclRule(prefix: string, password: string): string[] {
  const line = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8').split('\n').find((l) => l.startsWith('ACL SETUSER hub '));
  if (!line) throw new Error('the README gives no "ACL SETUSER hub …" line');
  return line.replaceAll('notify', prefix).replace('>PASSWORD', `>${password}`).split(/\s+/).slice(1);
}

/** A key prefix of its own for one test, so that test files run in parallel and leave nothing behind. */
export function testPrefix(name = 'test'): string {
  return `t-${name}-${randomUUID().slice(0, 8)}`;
}

/** Delete every key under `prefix`. */
export async function dropPrefix(prefix: string, redis?: Redis): Promise<void> {
  const client = redis ?? new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    if (!redis) client.disconnect();
  }
}
