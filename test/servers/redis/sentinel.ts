/**
 * A primary, a replica (or more) and three sentinels of a test's own, with short
 * timings (down after 1 s, failover timeout 3 s), so that a failover takes
 * seconds. Optionally with a password on the data servers and another on the
 * sentinels themselves.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type RedisProcess, startRedisProcess } from './process.ts';

export interface SentinelGroup {
  master: string;
  primary: RedisProcess;
  /** The first replica (`replicas` lists them all). */
  replica: RedisProcess;
  replicas: RedisProcess[];
  sentinels: RedisProcess[];
  /** `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`: REDIS_SENTINELS. */
  addresses: string;
  /** The port of the server the sentinels now call the primary. */
  currentPrimaryPort(): Promise<number>;
  close(): Promise<void>;
}

export async function startSentinelGroup(options: { password?: string; sentinelPassword?: string; master?: string; replicas?: number } = {}): Promise<SentinelGroup> {
  const master = options.master ?? 'mymaster';
  const auth = options.password ? [`requirepass ${options.password}`, `masterauth ${options.password}`] : [];
  const clientOptions = options.password ? { password: options.password } : {};
  const started: RedisProcess[] = [];
  try {
    // Diskless, at once: the replica is in sync within moments, and a killed primary leaves no files to matter.
    const fast = ['repl-diskless-sync yes', 'repl-diskless-sync-delay 0', 'repl-diskless-load on-empty-db'];
    const primary = await startRedisProcess({ config: [...auth, ...fast], clientOptions });
    started.push(primary);
    const replicas: RedisProcess[] = [];
    for (let i = 0; i < (options.replicas ?? 1); i++) {
      const replica = await startRedisProcess({ config: [...auth, ...fast, `replicaof 127.0.0.1 ${primary.port}`], clientOptions });
      started.push(replica);
      replicas.push(replica);
    }
    for (const replica of replicas) {
      await waitFor('the replica to be in sync', async () => {
        const c = replica.client();
        try {
          return /master_link_status:up/.test(await c.info('replication'));
        } finally {
          c.disconnect();
        }
      });
    }
    const sentinels: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const sentinel = await startRedisProcess({
        sentinel: true,
        clientOptions: options.sentinelPassword ? { password: options.sentinelPassword } : {},
        config: [
          `sentinel monitor ${master} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${master} 1000`,
          `sentinel failover-timeout ${master} 3000`,
          `sentinel parallel-syncs ${master} 1`,
          ...(options.password ? [`sentinel auth-pass ${master} ${options.password}`] : []),
          ...(options.sentinelPassword ? [`requirepass ${options.sentinelPassword}`] : []),
        ],
      });
      sentinels.push(sentinel);
      started.push(sentinel);
    }
    const currentPrimaryPort = async () => {
      const c = sentinels.find((s) => s.running)!.client();
      try {
        const [, port] = (await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', master)) as [string, string];
        return Number(port);
      } finally {
        c.disconnect();
      }
    };
    // Every sentinel knows the replica and the other sentinels before a test kills anything.
    await waitFor('the sentinels to see the replica and each other', async () => {
      for (const s of sentinels) {
        const c = s.client();
        try {
          const info = (await c.call('SENTINEL', 'MASTER', master)) as string[];
          const field = (name: string) => Number(info[info.indexOf(name) + 1]);
          if (field('num-slaves') < replicas.length || field('num-other-sentinels') < 2) return false;
        } finally {
          c.disconnect();
        }
      }
      return true;
    });
    return {
      master,
      primary,
      replica: replicas[0]!,
      replicas,
      sentinels,
      addresses: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      currentPrimaryPort,
      async close() {
        await Promise.all(started.map((p) => p.close()));
      },
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.close()));
    throw err;
  }
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
