/**
 * A persistent IndexedDB for Node, for the Rust crypto's store: indexeddbshim
 * over SQLite files in one folder (Node's built-in `node:sqlite`, through the
 * small better-sqlite3 stand-in beside this file: nothing native to build).
 *
 * Why not an in-memory store or a snapshot: a restart with a fresh store makes
 * new identity keys for the same device id, which the homeserver then refuses
 * for ever; a snapshot written now and then reuses megolm message indices after
 * a crash. Every IndexedDB transaction here is a SQLite transaction (WAL,
 * synchronous=FULL), so what the crypto committed survives SIGKILL.
 */
import { mkdirSync } from 'node:fs';
import setGlobalVars from 'indexeddbshim';

interface ShimDatabase {
  __transactions: unknown[];
  transaction(...args: unknown[]): { addEventListener(type: string, fn: () => void): void };
}

let installedAt: string | undefined;

/** Make `globalThis.indexedDB` a persistent store in `dir` (once per process; one folder per process). */
export function installIndexedDb(dir: string): void {
  if (installedAt !== undefined) {
    if (installedAt !== dir) throw new Error(`the crypto store is already ${installedAt} in this process; cannot also use ${dir}`);
    return;
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  setGlobalVars(globalThis as never, {
    checkOrigin: false,
    databaseBasePath: dir,
    deleteDatabaseFiles: false,
    cacheDatabaseInstances: true,
  });
  forgetFinishedTransactions();
  installedAt = dir;
}

/**
 * indexeddbshim keeps every transaction a connection ever made in
 * `__transactions` (read only when the connection closes), which grew by about
 * 1 MB per encrypted send: drop each one once it has finished.
 */
function forgetFinishedTransactions(): void {
  const IDBDatabase = (globalThis as unknown as { IDBDatabase: { prototype: ShimDatabase } }).IDBDatabase;
  const original = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (this: ShimDatabase, ...args: unknown[]) {
    const trans = original.apply(this, args);
    const forget = () => {
      const at = this.__transactions.indexOf(trans);
      if (at >= 0) this.__transactions.splice(at, 1);
    };
    trans.addEventListener('complete', forget);
    trans.addEventListener('abort', forget);
    return trans;
  };
}
