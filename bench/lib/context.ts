/** What every workload gets: where logs and profiles go, Redis, and how to start the hub's processes. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { HS_TOKEN, HS_USER_ID } from './homeserver-client.ts';
import { type Child, spawnNode, waitFor } from './proc.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface BenchContext {
  runId: string;
  redis: Redis;
  /** Child process output, one file per child. */
  logDir: string;
  /** Set with --profile: children write V8 CPU profiles here. */
  profileDir: string | undefined;
  /** Deliveries in flight per matrix worker (--concurrency). */
  concurrency: number;
  /** Where the hub and worker processes run from: the checkout (TypeScript), or a compiled build (--compiled). */
  hubRoot: string;
  /** Their entry point, relative to hubRoot. */
  cli: string;
  /** Node flags for the hub and worker processes: `npm start`'s, and those of --node-arg (repeatable: `--node-arg=--max-semi-space-size=2`). */
  nodeArgs: string[];
  /** Environment `npm start` sets for them (`env NAME=value node …`, e.g. MALLOC_ARENA_MAX). */
  nodeEnv: Record<string, string>;
  /** A key prefix of its own for one workload (deleted by {@link dropPrefix}). */
  prefix(name: string): string;
  /** A temporary folder removed at the end of the run. */
  tempDir(name: string): string;
}

export function createContext(options: { runId: string; logDir: string; profileDir: string | undefined; concurrency: number; nodeArgs?: string[]; nodeEnv?: Record<string, string>; hubRoot?: string; cli?: string }): BenchContext & { close(): Promise<void> } {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const dirs: string[] = [];
  return {
    ...options,
    nodeArgs: options.nodeArgs ?? [],
    nodeEnv: options.nodeEnv ?? {},
    hubRoot: options.hubRoot ?? ROOT,
    cli: options.cli ?? 'core/cli/main.ts',
    redis,
    prefix: (name) => `bench-${options.runId}-${name}-${randomBytes(2).toString('hex')}`,
    tempDir(name) {
      const dir = mkdtempSync(join(tmpdir(), `hub-bench-${name}-`));
      dirs.push(dir);
      return dir;
    },
    async close() {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
      redis.disconnect();
    },
  };
}

/**
 * Compile the hub as the Dockerfile does (tsconfig.build.json) into a
 * temporary folder, with the checkout's node_modules linked in: what
 * production runs, without TypeScript stripping at load time.
 */
export function compileHub(dir: string): { hubRoot: string; cli: string } {
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', dir], { cwd: ROOT, stdio: 'inherit' });
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return { hubRoot: dir, cli: 'core/cli/main.js' };
}

/** Delete every key under `prefix`. */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}

/**
 * Write the mapping document the way editors and `hub mapping put` do: a new file renamed over the old.
 * Returns when the file took its new content (the rename: a reader never sees it half written).
 */
export function writeMapping(file: string, mapping: Record<string, unknown>): number {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify({ _id: 'ccs.notifications', mapping }));
  const at = Date.now();
  renameSync(temporary, file);
  return at;
}

/** `#g0` … `#g{groups-1}`, each mapped to `fanout` Matrix rooms. */
export function groupsMapping(groups: number, fanout = 1, room = (g: number, t: number) => `!r${g}x${t}:bench.local`): Record<string, unknown> {
  const mapping: Record<string, unknown> = {};
  for (let g = 0; g < groups; g += 1) mapping[`#g${g}`] = { matrix: Array.from({ length: fanout }, (_, t) => room(g, t)) };
  return mapping;
}

function hubEnv(prefix: string, mappingFile: string): Record<string, string | undefined> {
  return {
    REDIS_URL,
    HUB_PREFIX: prefix,
    MAPPING_FILE: mappingFile,
    HUB_HTTP_PORT: '0',
    HUB_HTTP_HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    COUCHDB_URL: undefined,
    HUB_CONFIG: undefined,
  };
}

/** `hub start --only hub`, resolved once it consumes (its heartbeat is up: that follows the mapping being in force). */
export async function startHub(ctx: BenchContext, options: { prefix: string; mappingFile: string; name?: string; wait?: boolean; env?: Record<string, string> }): Promise<Child> {
  const child = spawnNode(options.name ?? 'hub', {
    args: [ctx.cli, 'start', '--only', 'hub'],
    cwd: ctx.hubRoot,
    env: { ...ctx.nodeEnv, ...hubEnv(options.prefix, options.mappingFile), MATRIX_HOMESERVER: undefined, MATRIX_ACCESS_TOKEN: undefined, ...options.env },
    logDir: ctx.logDir,
    nodeArgs: ctx.nodeArgs,
    ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}),
  });
  if (options.wait ?? true) await hubReady(ctx, options.prefix, child);
  return child;
}

/** Resolves once the hub `child` consumes (its heartbeat is up); fails if it exits first. */
export async function hubReady(ctx: BenchContext, prefix: string, child: Child): Promise<void> {
  await waitFor('the hub to consume', () => hasMember(ctx.redis, `${prefix}:hubs`, child), { watch: [child], timeoutMs: 60_000 });
}

/** Resolves once the matrix worker `child` consumes; fails if it exits first. */
export async function workerReady(ctx: BenchContext, prefix: string, child: Child): Promise<void> {
  await waitFor('the matrix worker to consume', () => hasMember(ctx.redis, `${prefix}:workers:matrix`, child), { watch: [child], timeoutMs: 60_000 });
}

/** `hub worker matrix --concurrency C` against the bench homeserver. */
export async function startMatrixWorker(ctx: BenchContext, options: { prefix: string; mappingFile: string; homeserver: string; concurrency: number; name?: string; wait?: boolean; env?: Record<string, string> }): Promise<Child> {
  const child = spawnNode(options.name ?? 'worker', {
    args: [ctx.cli, 'worker', 'matrix', '--concurrency', String(options.concurrency)],
    cwd: ctx.hubRoot,
    env: {
      ...ctx.nodeEnv,
      ...hubEnv(options.prefix, options.mappingFile),
      MATRIX_HOMESERVER: options.homeserver,
      MATRIX_USER_ID: HS_USER_ID,
      MATRIX_ACCESS_TOKEN: HS_TOKEN,
      MATRIX_DEVICE_ID: 'BENCH',
      ...options.env,
    },
    logDir: ctx.logDir,
    nodeArgs: ctx.nodeArgs,
    ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}),
  });
  if (options.wait ?? true) await workerReady(ctx, options.prefix, child);
  return child;
}

/** Heartbeat members are `<host>:<pid>:<random>`. */
async function hasMember(redis: Redis, key: string, child: Child): Promise<boolean> {
  const members = await redis.zrange(key, 0, -1);
  return members.some((m) => m.split(':')[1] === String(child.pid));
}
