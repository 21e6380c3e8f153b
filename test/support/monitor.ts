/**
 * Redis's MONITOR read through `redis-cli`, not ioredis: ioredis's `monitor()`
 * can take a monitored line that arrives with MONITOR's own reply for the
 * answer to a command ("Command queue state error"), which failed a test
 * while a second suite kept the same Redis busy, and left its connection open.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Redis } from 'ioredis';

export interface MonitoredCommand {
  /** The command and its arguments, as redis-cli quotes them (escapes taken off). */
  args: string[];
  /** The client's address, `host:port`. */
  source: string;
}

export interface Monitor {
  /** Resolves once every command Redis ran before it was called has reached `onCommand` (a marker sent through `redis`). */
  caughtUp(redis: Redis): Promise<void>;
  stop(): void;
}

/** Resolves once Redis has said OK: every command it runs after that reaches `onCommand`. */
export async function monitorRedis(url: string, onCommand: (command: MonitoredCommand) => void): Promise<Monitor> {
  const markers = new Map<string, () => void>();
  const child = spawn('redis-cli', ['-u', url, 'monitor'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-cli monitor exited (${code}) before Redis said OK`)));
    lines.on('line', (line) => {
      if (line === 'OK') return resolve();
      const parsed = /^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
      if (!parsed) return;
      const args = [...parsed[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => a[1]!.replace(/\\(.)/g, '$1'));
      const marker = markers.get(args[1]!);
      if (marker) marker();
      else onCommand({ source: parsed[1]!, args });
    });
  });
  return {
    async caughtUp(redis) {
      const key = `monitor-marker:${randomUUID()}`;
      const seen = new Promise<void>((resolve) => markers.set(key, resolve));
      // MONITOR reports commands in the order Redis ran them: this one last.
      await redis.exists(key);
      await seen;
      markers.delete(key);
    },
    stop: () => child.kill(),
  };
}
