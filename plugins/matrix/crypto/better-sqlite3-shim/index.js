// The subset of better-sqlite3 that indexeddbshim's nodeSQLiteDatabase.js uses
// (new Database(path), pragma, prepare().reader/all/run, close), over Node's
// built-in node:sqlite, so that the crypto store needs no native module.
// WAL with synchronous=FULL: a committed IndexedDB transaction survives SIGKILL
// and power loss; a half-written one is rolled back by SQLite.
import { DatabaseSync } from 'node:sqlite';

export default class Database {
  constructor(path) {
    this._db = new DatabaseSync(path);
    this._db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;');
  }

  pragma(text) {
    return this._db.prepare(`PRAGMA ${text}`).all();
  }

  prepare(sql) {
    const stmt = this._db.prepare(sql);
    return {
      get reader() {
        return stmt.columns().length > 0;
      },
      all: (...args) => stmt.all(...args),
      run: (...args) => stmt.run(...args),
    };
  }

  close() {
    this._db.close();
  }
}
