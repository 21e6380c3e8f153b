// The part of better-sqlite3's API that the stand-in serves (see index.js).
export interface Statement {
  /** Whether the statement returns rows. */
  readonly reader: boolean;
  all(...args: unknown[]): Array<Record<string, unknown>>;
  run(...args: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
}

export default class Database {
  constructor(path: string);
  pragma(text: string): Array<Record<string, unknown>>;
  prepare(sql: string): Statement;
  close(): void;
}
