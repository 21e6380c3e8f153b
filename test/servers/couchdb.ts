import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCouch {
  /** `http://127.0.0.1:<port>`, no credentials (pouchdb-server starts in admin party). */
  url: string;
  port: number;
  /** Where the databases, config.json and the server's logs (server.log, log.txt) live. */
  dir: string;
  /** Stop the server and remove its files. */
  stop(): Promise<void>;
  /** Stop (if running) and start again on the same port; the databases are kept. */
  restart(): Promise<void>;
  /** SIGKILL, as in a crash; `restart()` brings it back with its data. */
  kill(): Promise<void>;
}

/** A free loopback port, found by letting the kernel pick one. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * A real CouchDB-protocol server for tests: pouchdb-server on LevelDB in a temp
 * dir (not `--in-memory`, so that a restart keeps the data and the sequence
 * numbers go on, as with a real CouchDB). Run with this process's Node.
 */
export async function startCouch(options: { port?: number } = {}): Promise<TestCouch> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'couch-test-'));
  const url = `http://127.0.0.1:${port}`;
  const bin = join(import.meta.dirname, '../../node_modules/pouchdb-server/bin/pouchdb-server');
  let child: ChildProcess | undefined;
  const killOnExit = () => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', killOnExit);

  const spawnServer = async () => {
    const log = openSync(join(dir, 'server.log'), 'a');
    const args = [bin, '--port', String(port), '--host', '127.0.0.1', '--dir', dir, '--config', join(dir, 'config.json'), '--no-stdout-logs'];
    child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', log, log] });
    closeSync(log);
    child.unref(); // the exit hook kills it; it must not keep a failed test run alive
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`pouchdb-server exited (${child.exitCode}); see ${dir}/server.log`);
      try {
        const res = await fetch(`${url}/`, { signal: AbortSignal.timeout(1_000) });
        await res.text();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`pouchdb-server did not answer on ${url}; see ${dir}/server.log`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const terminate = async (signal: NodeJS.Signals) => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill(signal);
    await exited;
  };

  await spawnServer();
  return {
    url,
    port,
    dir,
    stop: async () => {
      await terminate('SIGTERM');
      process.off('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await terminate('SIGTERM');
      await spawnServer();
    },
    kill: () => terminate('SIGKILL'),
  };
}
