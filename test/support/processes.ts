/**
 * Hub processes for tests that attack a running hub from outside: each one is
 * `process.execPath core/cli/main.ts <args>` (this test's Node 24, which runs
 * the .ts sources), with its own environment, its output kept line by line,
 * and a kill that waits for the exit. Every process spawned here is killed by
 * {@link killAll} (call it in `after`), and with SIGKILL if the test process
 * itself exits first, so that a failed test leaves nothing running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REDIS_URL } from './redis.ts';

export const REPO_ROOT = join(import.meta.dirname, '../..');
const MAIN = join(REPO_ROOT, 'core/cli/main.ts');

export interface HubProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every line it wrote, stdout and stderr interleaved (the last 5,000). */
  readonly output: string[];
  /** Its JSON log lines, parsed (the last 5,000). */
  readonly logs: Array<Record<string, unknown>>;
  /** Resolves when it has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly running: boolean;
  /** Resolves with the first log line (`msg`) or output line matching; rejects on timeout or exit. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Send `signal` (SIGKILL by default) and wait for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** What every spawned hub needs: the test Redis under `prefix`, its mapping file, and a free operations port on loopback (logged at start); `extra` adds or overrides. */
export function hubEnv(prefix: string, mappingFile: string, extra: Record<string, string> = {}): Record<string, string> {
  return { REDIS_URL, HUB_PREFIX: prefix, MAPPING_FILE: mappingFile, HUB_HTTP_PORT: '0', HUB_HTTP_HOST: '127.0.0.1', ...extra };
}

const live = new Set<HubProcess>();

/**
 * The child's exit, once its output is read to the end: 'exit' can come while the last lines are still in the
 * pipes (a loaded machine), and the last line is what many tests check. Waits at most 2 s for the output, as a
 * grandchild may hold the pipes open.
 */
export function exitedWithOutput(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const outputEnd = Promise.all([child.stdout, child.stderr].map((stream) => (stream ? once(stream, 'close').catch(() => undefined) : undefined)));
  return once(child, 'exit').then(async ([code, signal]) => {
    await Promise.race([outputEnd, sleep(2000)]);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null };
  });
}

process.on('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

/**
 * Spawn `hub <args>`: the environment is exactly `env` plus PATH and HOME (nothing of the test's own leaks in).
 * `command` runs something else the same way (`['npm', 'start']`), in the repository.
 */
export function spawnHub(args: string[], options: { env: Record<string, string>; name?: string; cwd?: string; command?: string[] }): HubProcess {
  const name = options.name ?? args.join(' ');
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env };
  const [file, ...rest] = options.command ?? [process.execPath, MAIN];
  const child = spawn(file!, [...rest, ...args], { cwd: options.cwd ?? REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const watchers = new Set<(line: string, log: Record<string, unknown> | undefined) => void>();
  let running = true;
  const exited = exitedWithOutput(child).then((exit) => {
    running = false;
    live.delete(handle);
    return exit;
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (!line) continue;
        output.push(line);
        if (output.length > 5000) output.shift();
        let log: Record<string, unknown> | undefined;
        if (line.startsWith('{')) {
          try {
            log = JSON.parse(line) as Record<string, unknown>;
            logs.push(log);
            if (logs.length > 5000) logs.shift();
          } catch {
            // not a log line
          }
        }
        for (const watch of watchers) watch(line, log);
      }
    });
  }

  const handle: HubProcess = {
    name,
    child,
    pid: child.pid ?? -1,
    output,
    logs,
    exited,
    get running() {
      return running;
    },
    waitFor(pattern, timeoutMs = 120_000) {
      const seen = output.find((line) => pattern.test(line));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const done = (fn: () => void) => {
          watchers.delete(watch);
          clearTimeout(timer);
          fn();
        };
        const watch = (line: string) => {
          if (pattern.test(line)) done(() => resolve(line));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`${name}: no output matching ${pattern} in ${timeoutMs} ms; last lines:\n${output.slice(-20).join('\n')}`))),
          timeoutMs,
        );
        watchers.add(watch);
        void exited.then(({ code, signal }) =>
          done(() => reject(new Error(`${name} exited (${signal ?? code}) before printing ${pattern}; last lines:\n${output.slice(-20).join('\n')}`))),
        );
      });
    },
    async kill(signal = 'SIGKILL') {
      if (!running) return;
      child.kill(signal);
      await exited;
    },
    async stop(graceMs = 5000) {
      if (!running) return;
      child.kill('SIGTERM');
      const result = await Promise.race([exited, sleep(graceMs, 'timeout' as const)]);
      if (result === 'timeout') await handle.kill('SIGKILL');
    },
  };
  live.add(handle);
  return handle;
}

/** Run a one-shot command (`hub dead replay --all`) to its end; resolves with its exit code and output. */
export async function runHub(args: string[], options: { env: Record<string, string>; timeoutMs?: number }): Promise<{ code: number | null; stdout: string }> {
  const p = spawnHub(args, { env: options.env, name: `hub ${args.join(' ')}` });
  const timer = setTimeout(() => void p.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.output.join('\n') };
}

/** SIGKILL every process spawned here that still runs. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill('SIGKILL')));
}
