/**
 * One `redis-server` (or `redis-server --sentinel`) of a test's own, on a free
 * loopback port, its files in a temp dir: started, waited for, killed (SIGKILL:
 * a crash) and removed. The Sentinel, Cluster and TLS helpers beside this file
 * are made of these.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort } from '../free-port.ts';

export interface RedisProcess {
  port: number;
  dir: string;
  readonly running: boolean;
  /** A connection for the test itself (not the code under test). */
  client(options?: RedisOptions): Redis;
  kill(): Promise<void>;
  /** Kill it and remove its dir. */
  close(): Promise<void>;
}

const everyChild = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of everyChild) child.kill('SIGKILL');
});

export interface RedisProcessOptions {
  /** Config file lines besides port, bind, dir and logfile (`replicaof 127.0.0.1 6380`, `tls-port …`). */
  config?: string[];
  sentinel?: boolean;
  /** How the test connects (password, tls); also how readiness is probed. */
  clientOptions?: RedisOptions;
  /** With TLS the plain port is 0 and this is the TLS port. */
  tls?: boolean;
}

export async function startRedisProcess(options: RedisProcessOptions = {}): Promise<RedisProcess> {
  const dir = mkdtempSync(join(tmpdir(), options.sentinel ? 'hub-sentinel-' : 'hub-redis-'));
  for (let tries = 1; ; tries++) {
    const port = await freePort();
    const lines = [
      ...(options.tls ? ['port 0', `tls-port ${port}`] : [`port ${port}`]),
      'bind 127.0.0.1',
      `dir ${dir}`,
      `logfile ${join(dir, 'redis.log')}`,
      ...(options.sentinel ? [] : ['save ""', 'appendonly no']),
      ...(options.config ?? []),
    ];
    // Sentinel rewrites its config file: it must be a file of its own.
    const file = join(dir, options.sentinel ? 'sentinel.conf' : 'redis.conf');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const child = spawn('redis-server', [file, ...(options.sentinel ? ['--sentinel'] : [])], { stdio: 'ignore' });
    everyChild.add(child);
    child.once('exit', () => everyChild.delete(child));
    const client = (extra: RedisOptions = {}) => new Redis({ host: '127.0.0.1', port, ...options.clientOptions, ...extra });
    const up = await answers(child, client, realpathSync(file));
    const kill = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await once(child, 'exit');
    };
    if (!up) {
      await kill();
      if (tries === 5) throw new Error(`redis-server did not start; see ${dir}/redis.log`);
      continue;
    }
    return {
      port,
      dir,
      get running() {
        return child.exitCode === null && child.signalCode === null;
      },
      client,
      kill,
      async close() {
        await kill();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

/**
 * True once it answers; false when it exited (its port taken by another process between the probe and the bind).
 * Ours, not another test's Redis on that port: it names our config file.
 */
async function answers(child: ChildProcess, client: (extra: RedisOptions) => Redis, file: string): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    const probe = client({ lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      if ((await probe.info('server')).includes(`config_file:${file}`)) return true;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    await sleep(50);
  }
  return false;
}
