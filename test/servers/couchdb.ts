import { type ChildProcess, spawn } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CouchLockout {
  /** Failed logins from one address that lock a user out (CouchDB's default 5). */
  threshold?: number;
  /** How long the count lives from its first failure, and so the longest lockout, in ms (CouchDB's default 300000). */
  periodMs?: number;
  mode?: 'enforce' | 'warn' | 'off';
}

export interface TestCouch {
  /** `http://127.0.0.1:<port>`, no credentials (admin party, unless `admins` were given). */
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

/** `-pbkdf2-<derived key>,<salt>,<iterations>`, the `[admins]` form of a password. */
function hashAdminPassword(password: string): string {
  const salt = randomBytes(16).toString('hex');
  return `-pbkdf2-${pbkdf2Sync(password, salt, 10, 20, 'sha1').toString('hex')},${salt},10`;
}

/**
 * A real CouchDB-protocol server for tests: pouchdb-server's parts on LevelDB
 * in a temp dir (not in memory, so that a restart keeps the data and the
 * sequence numbers go on, as with a real CouchDB), with CouchDB 3's lockout
 * after failed logins (couchdb-process.ts; `lockout` sets it, CouchDB's
 * defaults otherwise; the count is kept in memory, so a restart clears it, as
 * in CouchDB). Run with this process's Node.
 */
export async function startCouch(options: { port?: number; lockout?: CouchLockout; admins?: Record<string, string> } = {}): Promise<TestCouch> {
  const dir = mkdtempSync(join(tmpdir(), 'couch-test-'));
  const script = join(import.meta.dirname, 'couchdb-process.ts');
  const { threshold, periodMs, mode } = options.lockout ?? {};
  const lockout = Object.fromEntries(
    Object.entries({ threshold, max_lifetime: periodMs, mode }).flatMap(([key, value]) => (value === undefined ? [] : [[key, String(value)]])),
  );
  // Server admins from the start (no admin party to race with), hashed as CouchDB and pouchdb-server store them.
  const admins = Object.fromEntries(Object.entries(options.admins ?? {}).map(([name, password]) => [name, hashAdminPassword(password)]));
  const config = { ...(Object.keys(lockout).length ? { chttpd_auth_lockout: lockout } : {}), ...(options.admins ? { admins } : {}) };
  if (Object.keys(config).length) writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config)}\n`);
  let child: ChildProcess | undefined;
  const killOnExit = () => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', killOnExit);

  /**
   * Starts the server on `listenPort` (0: one the kernel picks as it binds, so
   * that no other process can take it between a probe and the bind); resolves
   * with the port once it answers. The server writes its port to a file once
   * listening, so that an answer from another server is never mistaken for it.
   */
  const spawnServer = async (listenPort: number): Promise<number> => {
    const portFile = join(dir, 'port');
    rmSync(portFile, { force: true });
    const log = openSync(join(dir, 'server.log'), 'a');
    child = spawn(process.execPath, [script, String(listenPort), dir], { cwd: dir, stdio: ['ignore', log, log] });
    closeSync(log);
    child.unref(); // the exit hook kills it; it must not keep a failed test run alive
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the test CouchDB exited (${child.exitCode}); see ${dir}/server.log`);
      const bound = existsSync(portFile) ? Number(readFileSync(portFile, 'utf8')) : 0;
      if (bound > 0) {
        try {
          const res = await fetch(`http://127.0.0.1:${bound}/`, { signal: AbortSignal.timeout(5_000) });
          await res.text();
          if (res.ok) return bound;
        } catch {
          // listening, not answering yet
        }
      }
      if (Date.now() > deadline) throw new Error(`the test CouchDB did not answer in 2 minutes; see ${dir}/server.log`);
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

  const port = await spawnServer(options.port ?? 0);
  const url = `http://127.0.0.1:${port}`;
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
      await spawnServer(port);
    },
    kill: () => terminate('SIGKILL'),
  };
}
