/**
 * Child processes of the bench: every one is registered, so that each is
 * killed when its workload ends, when the bench fails, and when it is
 * interrupted. Children run the same Node as the bench (process.execPath,
 * Node 24), so that the pid measured is the node process itself, not a
 * wrapper.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Child {
  name: string;
  pid: number;
  proc: ChildProcess;
  logFile: string;
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  exited: Promise<number | string>;
  /** The last lines of its output, for an error message. */
  tail(lines?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  args: string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
  logDir: string;
  /** Write a V8 CPU profile into this folder when the process exits. */
  profileDir?: string;
  ipc?: boolean;
  nodeArgs?: string[];
}

const live = new Set<Child>();
let handlersInstalled = false;

/** Set once the bench has been told to stop: workloads stop starting anything. */
export function interrupted(): boolean {
  return process.exitCode === 130;
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Last resort: whatever way the bench ends, no child outlives it.
  process.on('exit', () => {
    for (const child of live) child.proc.kill('SIGKILL');
  });
  // Interrupted: stop the children, so that the workload fails and its `finally` deletes its keys;
  // the bench then ends on its own. A second signal, or 15 s, ends it at once.
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      process.exitCode = 130;
      process.stderr.write(`\nbench: ${signal}, stopping ${live.size} child process(es)\n`);
      void stopAll(1000);
      setTimeout(() => process.exit(130), 15_000).unref();
    });
  }
}

let counter = 0;

export function spawnNode(name: string, options: SpawnOptions): Child {
  installHandlers();
  counter += 1;
  const logFile = join(options.logDir, `${String(counter).padStart(2, '0')}-${name}.log`);
  const log = createWriteStream(logFile);
  const nodeArgs = [...(options.nodeArgs ?? [])];
  if (options.profileDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${options.profileDir}`, `--cpu-prof-name=${name}.cpuprofile`);
  const proc = spawn(process.execPath, [...nodeArgs, ...options.args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc ? (['ipc'] as const) : [])],
  });
  proc.stdout!.pipe(log, { end: false });
  proc.stderr!.pipe(log, { end: false });
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? 'unknown');
      setImmediate(() => log.end());
    });
  });
  const child: Child = {
    name,
    pid: proc.pid!,
    proc,
    logFile,
    exited,
    tail(lines = 20) {
      try {
        return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
    async stop(graceMs = 5000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!done) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
  live.add(child);
  return child;
}

export async function stopAll(graceMs = 5000): Promise<void> {
  await Promise.all([...live].map((c) => c.stop(graceMs)));
}

/** Poll `check` until it is truthy; fail early when one of `watch` exits, or after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false | null | 0> | T | undefined | false | null | 0, options: { timeoutMs?: number; everyMs?: number; watch?: Child[] } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const value = await check();
    if (value) return value;
    for (const child of options.watch ?? []) {
      if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
        throw new Error(`${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode}) while waiting for ${what}:\n${child.tail()}`);
      }
    }
    if (Date.now() > deadline) {
      const tails = (options.watch ?? []).map((c) => `--- ${c.name} (${c.logFile})\n${c.tail(10)}`).join('\n');
      throw new Error(`timed out waiting for ${what}${tails ? `\n${tails}` : ''}`);
    }
    await sleep(options.everyMs ?? 20);
  }
}
