/**
 * The CouchDB-protocol server the tests start (`startCouch()` in couchdb.ts
 * runs this file as a child process): pouchdb-server's own parts (express-pouchdb
 * on LevelDB, as its `bin` assembles them), plus what CouchDB 3 does and
 * pouchdb-server leaves out that the hub depends on:
 *
 * - The lockout after failed logins (`[chttpd_auth_lockout]`, CouchDB ≥ 3.4,
 *   on by default): failed logins are counted per client address, user and
 *   password salt, in an entry that lives `max_lifetime` ms (300000) from its
 *   first failure; once it holds `threshold` (5), every login of that user from
 *   that address, right password or not, is answered 403
 *   `{"error":"forbidden","reason":"Account is temporarily locked due to
 *   multiple authentication failures"}` until the entry expires. Logins while
 *   locked out are not counted. A new password (a new salt) starts afresh.
 *   `mode` is `enforce` (default), `warn` or `off`. Read from the server's
 *   config (`config.json`, `PUT /_config/chttpd_auth_lockout/<key>`), as CouchDB
 *   reads its ini. Counted for server admins (`[admins]`), the users the tests
 *   log in as; `_users` accounts are not.
 *
 * Usage: node couchdb-process.ts <port> <dir>
 */
import { pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';

const LOCKED = { error: 'forbidden', reason: 'Account is temporarily locked due to multiple authentication failures' };

const [port, dir] = process.argv.slice(2);
if (!port || !dir) throw new Error('usage: node couchdb-process.ts <port> <dir>');

// pouchdb-server's dependencies, resolved as its own code resolves them.
const fromServer = createRequire(createRequire(import.meta.url).resolve('pouchdb-server/lib/index.js'));
const express = fromServer('express');
const expressPouchDB = fromServer('express-pouchdb');
const PouchDB = fromServer('pouchdb-core')
  .plugin(fromServer('pouchdb-adapter-http'))
  .plugin(fromServer('pouchdb-replication'))
  .plugin(fromServer('pouchdb-mapreduce'))
  .plugin(fromServer('pouchdb-adapter-leveldb'));

interface CouchConfig {
  get(section: string, key: string): unknown;
}

const pouch = expressPouchDB({ configPath: join(dir, 'config.json'), logPath: join(dir, 'log.txt') });
pouch.setPouchDB(PouchDB.defaults({ prefix: `${dir}${sep}` }));
const config = pouch.couchConfig as CouchConfig;

/** Failed logins by `address user salt`: how many, and when the first was (the entry's creation). */
const failures = new Map<string, { count: number; since: number }>();

function lockoutSetting(key: 'mode' | 'threshold' | 'max_lifetime', fallback: string): string {
  return String(config.get('chttpd_auth_lockout', key) ?? fallback);
}

/** The name and password of a Basic `Authorization` header. */
function basicCredentials(header: string | undefined): { name: string; password: string } | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { name: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** A server admin's stored password: `-pbkdf2-<key>,<salt>,<iterations>` once hashed (plain text until the config is saved). */
function adminPassword(name: string): { salt: string; matches(password: string): boolean } | undefined {
  const stored = config.get('admins', name);
  if (typeof stored !== 'string') return undefined;
  const hashed = /^-pbkdf2-([\da-f]+),([\da-f]+),(\d+)$/.exec(stored);
  if (!hashed) return { salt: '', matches: (password) => password === stored };
  const [, key, salt, iterations] = hashed as unknown as [string, string, string, string];
  return {
    salt,
    matches: (password) => timingSafeEqual(pbkdf2Sync(password, salt, Number(iterations), key.length / 2, 'sha1'), Buffer.from(key, 'hex')),
  };
}

/** CouchDB's peer: the socket's address, or behind a local proxy the last hop of X-Forwarded-For (mochiweb's rule). */
function peer(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  const forwarded = req.headers['x-forwarded-for'];
  const local = /^(::ffff:)?(127\.0\.0\.1|10\.)/.test(address) || address === '::1';
  return local && typeof forwarded === 'string' ? forwarded.split(',').at(-1)!.trim() : address;
}

function lockout(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  const mode = lockoutSetting('mode', 'enforce');
  const credentials = basicCredentials(req.headers.authorization);
  const admin = credentials && adminPassword(credentials.name);
  if (mode === 'off' || !credentials || !admin) return next();
  const key = `${peer(req)} ${credentials.name} ${admin.salt}`;
  const now = performance.now();
  const entry = failures.get(key);
  if (entry && now - entry.since > Number(lockoutSetting('max_lifetime', '300000'))) failures.delete(key);
  const counted = failures.get(key);
  if (counted && counted.count >= Number(lockoutSetting('threshold', '5'))) {
    if (mode === 'enforce') {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(LOCKED)}\n`);
      return;
    }
    console.warn(`couch_auth_lockout: authentication failure threshold reached for ${credentials.name} from ${peer(req)}`);
  }
  // A failure is counted here; express-pouchdb answers it (401 "Name or password is incorrect.").
  if (!admin.matches(credentials.password)) {
    if (counted) counted.count += 1;
    else failures.set(key, { count: 1, since: now });
  }
  next();
}

const app = express();
app.use(lockout);
app.use(pouch);
const server = app.listen(Number(port), '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`));
server.on('error', (err: Error) => {
  console.error(`cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});
