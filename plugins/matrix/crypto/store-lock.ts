/**
 * One process at a time owns a crypto store: two would upload one-time keys
 * twice and reuse megolm message indices.
 *
 * The lock is the kernel's: an open SQLite transaction (`BEGIN EXCLUSIVE`,
 * never committed) on `owner.lock` in the store's folder, i.e. a POSIX
 * advisory lock, which the kernel drops the instant its process ends, however
 * it ends (SIGKILL, the OOM killer). A pid file cannot tell: a killed process
 * not yet reaped by its parent (a shell as a container's entry point), a pid
 * reused by another program or one from another container's pid namespace all
 * look alive. A waiting process simply tries again, with backoff, until the
 * holder is gone.
 */
import { hostname } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';

/** How soon a waiting process tries again: doubling from the first, then every `maxMs`. */
const RETRY = { firstMs: 100, maxMs: 1000 };
const SQLITE_BUSY = 5;

/** Keep it referenced while the store is in use: a lock collected as garbage closes its database, and so lets go. */
export interface StoreLock {
  release(): void;
}

/** Who holds the store, as its holder wrote it down (for messages only: the lock itself decides). */
export interface Holder {
  pid: number;
  host: string;
  since: string;
}

/** Take the lock if it is free; `undefined` when a live process holds it. */
export function tryLockStore(dir: string): StoreLock | undefined {
  const db = new DatabaseSync(join(dir, 'owner.lock'), { timeout: 0 });
  try {
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { errcode?: number }).errcode === SQLITE_BUSY) return undefined;
    throw err;
  }
  const holder: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  writeFileSync(join(dir, 'owner.json'), `${JSON.stringify(holder)}\n`, { mode: 0o600 });
  return { release: () => db.close() };
}

/** Who wrote last that they hold the store in `dir`, if anyone did. */
export function storeHolder(dir: string): Holder | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'owner.json'), 'utf8')) as Holder;
  } catch {
    return undefined;
  }
}

/**
 * The lock, once the holder (if any) is gone. `onWait` is called once, when
 * the first try finds the store held. Rejects only when `signal` aborts.
 */
export async function lockStore(dir: string, signal: AbortSignal, onWait: (holder: Holder | undefined) => void): Promise<StoreLock> {
  let delay = RETRY.firstMs;
  for (let tries = 0; ; tries++) {
    signal.throwIfAborted();
    const lock = tryLockStore(dir);
    if (lock) return lock;
    if (tries === 0) onWait(storeHolder(dir));
    await sleep(delay, undefined, { signal });
    delay = Math.min(delay * 2, RETRY.maxMs);
  }
}
