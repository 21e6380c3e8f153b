/**
 * A Redis of a test's own: `redis-server` on a free loopback port, its data in
 * a temp dir, durable by default (`appendonly yes`, `appendfsync always`: what
 * Redis acknowledged is on disk), so that a test can SIGKILL it and start it
 * again on the same port with its data.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '../servers/free-port.ts';

export interface PrivateRedis {
  port: number;
  url: string;
  dir: string;
  readonly running: boolean;
  /** SIGKILL: a crash, no shutdown save. */
  kill(): Promise<void>;
  /** Start again on the same port, with the data of the dir; resolves when it answers PING. */
  start(): Promise<void>;
  /** Kill it and remove its dir. */
  close(): Promise<void>;
}

const everyChild = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of everyChild) child.kill('SIGKILL');
});

/** `port`: a port chosen beforehand (a hub already pointed at it); `password`: `requirepass`. */
export async function startPrivateRedis(options: { durable?: boolean; port?: number; password?: string } = {}): Promise<PrivateRedis> {
  let port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'hub-redis-'));
  const durable = options.durable ?? true;
  const args = () => [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no',
    '--logfile', join(dir, 'redis.log'),
    ...(durable ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    ...(options.password ? ['--requirepass', options.password] : []),
  ];
  let child: ChildProcess | undefined;

  const start = async () => {
    const c = spawn('redis-server', args(), { stdio: 'ignore' });
    child = c;
    everyChild.add(c);
    c.once('exit', () => everyChild.delete(c));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`redis-server exited (${c.exitCode}); see ${dir}/redis.log`);
      const probe = new Redis({ port, host: '127.0.0.1', password: options.password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => {});
      try {
        await probe.connect();
        // Ours, not another test's Redis that took the port between the probe for a free one and the bind.
        const [, itsDir] = (await probe.call('CONFIG', 'GET', 'dir')) as [string, string];
        if (itsDir === realpathSync(dir) && (await probe.ping()) === 'PONG') return;
      } catch {
        // not up yet (or still loading its data)
      } finally {
        probe.disconnect();
      }
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer in a minute; see ${dir}/redis.log`);
      await sleep(50);
    }
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGKILL');
    await once(c, 'exit');
  };

  // The port was free when probed; another process may bind it first: then try another.
  for (let tries = 1; ; tries++) {
    try {
      await start();
      break;
    } catch (err) {
      if (tries === 5 || options.port !== undefined || child?.exitCode === null) throw err;
      port = await freePort();
    }
  }
  return {
    port,
    url: `redis://${options.password ? `:${options.password}@` : ''}127.0.0.1:${port}`,
    dir,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    kill,
    start,
    async close() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
