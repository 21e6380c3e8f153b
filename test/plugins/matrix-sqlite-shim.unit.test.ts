/**
 * The matrix plugin's better-sqlite3 stand-in
 * (plugins/matrix/crypto/better-sqlite3-shim): what indexeddbshim calls of
 * better-sqlite3, over Node's built-in node:sqlite, for the exact versions of
 * indexeddbshim and matrix-js-sdk that package.json pins. An upgrade of either
 * that changes what is called fails here, naming the call.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import Database from '../../plugins/matrix/crypto/better-sqlite3-shim/index.js';

const ROOT = join(import.meta.dirname, '../..');
const SHIM = join(ROOT, 'plugins/matrix/crypto/better-sqlite3-shim/index.js');
const SHIM_DB = join(ROOT, 'node_modules/indexeddbshim/src/nodeSQLiteDatabase.js');
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, Record<string, string>>;
const pkg = readJson(join(ROOT, 'package.json'));

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'hub-sqlite-shim-'));
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** As much of IndexedDB as the last test reads (the project's TypeScript has no DOM types). */
interface Request<T> { result: T; error: unknown; onsuccess: () => void; onerror: () => void }
interface Db { transaction(store: string): { objectStore(name: string): { get(key: string): Request<unknown> } }; close(): void }
interface Factory { open(name: string, version: number): Request<Db> }

interface SQLiteResult { error: Error | null; insertId?: number; rowsAffected?: number; rows?: Array<Record<string, unknown>> }
interface ShimSQLiteDatabase {
  exec(queries: Array<{ sql: string; args: unknown[] }>, readOnly: boolean, callback: (err: Error | null, results?: SQLiteResult[]) => void): void;
  _db: { close(cb?: (err?: Error | null) => void): void };
}

/** indexeddbshim's own wrapper around better-sqlite3 (so the stand-in is driven exactly as the crypto store drives it). */
async function shimDatabase(path: string, opts: { busyTimeout?: number } = {}): Promise<ShimSQLiteDatabase> {
  const { default: SQLiteDatabase } = (await import(pathToFileURL(SHIM_DB).href)) as { default: new (path: string, opts?: object) => ShimSQLiteDatabase };
  return new SQLiteDatabase(path, opts);
}

function exec(db: ShimSQLiteDatabase, queries: Array<[string, ...unknown[]]>, readOnly = false): Promise<SQLiteResult[]> {
  return new Promise((resolve, reject) => db.exec(queries.map(([sql, ...args]) => ({ sql, args })), readOnly, (err, results) => (err ? reject(err) : resolve(results!))));
}

describe('the better-sqlite3 stand-in of the matrix crypto store', () => {
  test('indexeddbshim and matrix-js-sdk are pinned to exact versions, and those are the ones installed', () => {
    for (const name of ['indexeddbshim', 'matrix-js-sdk']) {
      const wanted = pkg.dependencies![name]!;
      assert.match(wanted, /^\d+\.\d+\.\d+$/, `${name} is pinned exactly in package.json, not a range`);
      assert.equal(readJson(join(ROOT, 'node_modules', name, 'package.json')).version as unknown as string, wanted, `${name} installed at the pinned version`);
    }
    assert.equal(pkg.dependencies!['better-sqlite3'], 'file:plugins/matrix/crypto/better-sqlite3-shim');
    assert.equal((pkg.overrides as unknown as Record<string, Record<string, string>>).indexeddbshim!['better-sqlite3'], '$better-sqlite3');
  });

  test("indexeddbshim's `better-sqlite3` is the stand-in, not the native module", () => {
    // node_modules may be shared with another checkout of the project (CI links it into a
    // copy), so the stand-in is recognised by its place in a project and its text.
    const resolved = realpathSync(createRequire(SHIM_DB).resolve('better-sqlite3'));
    assert.ok(resolved.endsWith(join('plugins/matrix/crypto/better-sqlite3-shim/index.js')), `resolved to ${resolved}`);
    assert.equal(readFileSync(resolved, 'utf8'), readFileSync(SHIM, 'utf8'));
  });

  test('it serves every member of better-sqlite3 that indexeddbshim uses', () => {
    const source = readFileSync(SHIM_DB, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    const used = (object: string) => [...new Set([...source.matchAll(new RegExp(`\\b${object}\\.(\\w+)`, 'g'))].map((m) => m[1]!))].sort();
    assert.match(source, /^import Database from 'better-sqlite3';$/m, 'the default export is what it imports');
    assert.deepEqual(used('db'), ['close', 'pragma', 'prepare'], 'Database methods used');
    assert.deepEqual(used('stmt'), ['all', 'reader', 'run'], 'Statement members used');
    assert.deepEqual(used('executionResult'), ['changes', 'lastInsertRowid'], 'RunResult fields used');
    const db = new Database(':memory:');
    const stmt = db.prepare('SELECT 1 AS one');
    for (const member of ['all', 'run'] as const) assert.equal(typeof stmt[member], 'function', `Statement.${member}`);
    assert.equal(stmt.reader, true);
    assert.equal(db.prepare('CREATE TABLE t (x)').reader, false);
    db.close();
  });

  test("driven by indexeddbshim's own wrapper: statements, arguments, NUL inside text, blobs, large integers, insert ids, read-only refusals", async () => {
    const db = await shimDatabase(join(tempDir(), 'db.sqlite'), { busyTimeout: 50 });
    const bytes = new Uint8Array([0, 1, 2, 255]);
    const results = await exec(db, [
      ['BEGIN'],
      ['CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB, n INTEGER)'],
      ['INSERT INTO t (k, v, n) VALUES (?, ?, ?)', 'a\u0000b', bytes, Number.MAX_SAFE_INTEGER - 1],
      ['INSERT INTO t (k, v, n) VALUES (?, ?, ?)', 'c', null, -1],
      ['UPDATE t SET n = n + 1'],
      ['SELECT k, v, n FROM t ORDER BY k'],
      ['COMMIT'],
    ]);
    assert.deepEqual(results.map((r) => r.error), [null, null, null, null, null, null, null]);
    assert.equal(results[2]!.insertId, 1);
    assert.equal(results[3]!.insertId, 2);
    assert.equal(results[4]!.rowsAffected, 2);
    const rows = results[5]!.rows!;
    assert.equal(rows[0]!.k, 'a\u0000b', 'NUL inside text kept (indexeddbshim does not escape it under Node)');
    assert.deepEqual(new Uint8Array(rows[0]!.v as Uint8Array), bytes);
    assert.equal(rows[0]!.n, Number.MAX_SAFE_INTEGER, 'integers up to 2^53 - 1 (IndexedDB key generators stop there)');
    assert.deepEqual({ ...rows[1] }, { k: 'c', v: null, n: 0 });
    const refused = await exec(db, [['BEGIN'], ['SELECT count(*) AS n FROM t'], ['DELETE FROM t'], ['COMMIT']], true);
    assert.equal(refused[1]!.rows![0]!.n, 2);
    assert.match(String(refused[2]!.error), /not authorized/);
    const bad = await exec(db, [['SELECT * FROM missing']]);
    assert.match(String(bad[0]!.error), /no such table/, 'an SQL error is a result, not a throw');
    await new Promise<void>((resolve, reject) => db._db.close((err) => (err ? reject(err) : resolve())));
  });

  test('files are WAL with synchronous=FULL', () => {
    const db = new Database(join(tempDir(), 'db.sqlite'));
    assert.equal(db.pragma('journal_mode')[0]!.journal_mode, 'wal');
    assert.equal(db.pragma('synchronous')[0]!.synchronous, 2, 'FULL');
    db.close();
  });

  test('through indexeddbshim, a committed IndexedDB transaction survives SIGKILL of its process', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import setGlobalVars from 'indexeddbshim';
      const idb = setGlobalVars({}, { checkOrigin: false, databaseBasePath: ${JSON.stringify(dir)}, deleteDatabaseFiles: false });
      const open = idb.indexedDB.open('store', 1);
      open.onupgradeneeded = () => open.result.createObjectStore('keys');
      open.onsuccess = () => {
        const tx = open.result.transaction('keys', 'readwrite');
        tx.objectStore('keys').put({ pickle: 'olm\\u0000account', bytes: new Uint8Array([9, 8, 7]) }, 'account');
        tx.oncomplete = () => { console.log('committed'); process.kill(process.pid, 'SIGKILL'); };
      };
    `], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += String(d)));
    const [, signal] = await once(child, 'exit');
    assert.equal(signal, 'SIGKILL');
    assert.match(out, /committed/);

    const { default: setGlobalVars } = await import('indexeddbshim');
    const idb = setGlobalVars({} as never, { checkOrigin: false, databaseBasePath: dir, deleteDatabaseFiles: false }) as unknown as { indexedDB: Factory };
    const db = await new Promise<Db>((resolve, reject) => {
      const open = idb.indexedDB.open('store', 1);
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const record = await new Promise<{ pickle: string; bytes: Uint8Array }>((resolve, reject) => {
      const get = db.transaction('keys').objectStore('keys').get('account');
      get.onsuccess = () => resolve(get.result as { pickle: string; bytes: Uint8Array });
      get.onerror = () => reject(get.error);
    });
    db.close();
    assert.equal(record.pickle, 'olm\u0000account');
    assert.deepEqual([...record.bytes], [9, 8, 7]);
  });
});
