import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadConfigFile, resolveConfig } from '../../core/config/load-config.ts';
import type { HubConfigInput } from '../../core/config/schema.ts';
import type { Env } from '../../core/config/env.ts';

/** The message of the error `fn` throws (it must throw). */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'HUB_ERR_CONFIG', `unexpected error: ${String(err)}`);
    return (err as Error).message;
  }
  assert.fail('expected an error');
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hub-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A file under the test's temporary folder. */
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('resolveConfig: defaults and environment overrides', () => {
  test('an empty file and an empty environment give the documented defaults', () => {
    const config = resolveConfig({}, {});
    assert.equal(config.redisUrl, 'redis://127.0.0.1:6379');
    assert.equal(config.prefix, 'notify');
    assert.equal(config.mapping.couchdbUrl, undefined);
    assert.equal(config.mapping.db, 'notifications');
    assert.equal(config.mapping.docId, 'ccs.notifications');
    assert.equal(config.mapping.file, './mapping.json');
    assert.equal(config.http.port, 9464);
    assert.equal(config.ingress.maxBodyBytes, 64 * 1024);
    assert.equal(config.ingress.dedupeWindow, 24 * 3600_000);
    // The shipped plugins wherever the hub runs from, not a folder of the working directory.
    assert.deepEqual(config.plugins.dirs, [fileURLToPath(new URL('../../plugins', import.meta.url))]);
  });

  test('every variable of CONTRACT §6 overrides the file', () => {
    const fromFile: HubConfigInput = {
      redisUrl: 'redis://file-host:6379',
      prefix: 'fromfile',
      logLevel: 'info',
      mapping: { couchdbUrl: 'http://couch-file:5984', db: 'filedb', docId: 'file.doc', file: './file.json' },
      http: { port: 1111, host: '127.0.0.1' },
      delivery: { concurrency: 3, maxAttempts: 3 },
    };
    const env: Env = {
      REDIS_URL: 'rediss://env-host:6380/2',
      HUB_PREFIX: 'fromenv',
      LOG_LEVEL: 'warn',
      COUCHDB_URL: 'https://admin:secret@couch-env:6984',
      COUCHDB_DB: 'envdb',
      MAPPING_DOC_ID: 'env.doc',
      MAPPING_FILE: '/etc/hub/mapping.json',
      HUB_HTTP_PORT: '9999',
      HUB_HTTP_HOST: '::1',
      HUB_CONCURRENCY: '12',
      HUB_MAX_ATTEMPTS: '5',
    };
    const config = resolveConfig(fromFile, env);
    assert.equal(config.redisUrl, 'rediss://env-host:6380/2');
    assert.equal(config.prefix, 'fromenv');
    assert.equal(config.logLevel, 'warn');
    assert.equal(config.mapping.couchdbUrl, 'https://admin:secret@couch-env:6984');
    assert.equal(config.mapping.db, 'envdb');
    assert.equal(config.mapping.docId, 'env.doc');
    assert.equal(config.mapping.file, '/etc/hub/mapping.json');
    assert.equal(config.http.port, 9999);
    assert.equal(config.http.host, '::1');
    assert.equal(config.delivery.concurrency, 12);
    assert.equal(config.delivery.maxAttempts, 5);
  });

  test('a variable overrides one key and leaves its siblings from the file', () => {
    const config = resolveConfig({ mapping: { db: 'filedb', file: './from-file.json' } }, { MAPPING_FILE: '/srv/mapping.json' });
    assert.equal(config.mapping.file, '/srv/mapping.json');
    assert.equal(config.mapping.db, 'filedb');
  });

  test('a variable set to the empty string counts as unset', () => {
    const config = resolveConfig({ prefix: 'fromfile' }, { HUB_PREFIX: '', HUB_HTTP_PORT: '' });
    assert.equal(config.prefix, 'fromfile');
    assert.equal(config.http.port, 9464);
  });

  test('the file config is not modified by the overlay', () => {
    const fromFile: HubConfigInput = { http: { port: 1 } };
    resolveConfig(fromFile, { HUB_HTTP_PORT: '2' });
    assert.deepEqual(fromFile, { http: { port: 1 } });
  });
});

describe('resolveConfig: <VAR>_FILE (Docker and Kubernetes secrets)', () => {
  test('the value is read from the file, its trailing newline removed', () => {
    const path = file('redis-url', 'redis://:s3cret@redis.internal:6379\n');
    const config = resolveConfig({}, { REDIS_URL_FILE: path });
    assert.equal(config.redisUrl, 'redis://:s3cret@redis.internal:6379');
  });

  test('a CRLF line ending is removed too', () => {
    const path = file('prefix-crlf', 'windows\r\n');
    assert.equal(resolveConfig({}, { HUB_PREFIX_FILE: path }).prefix, 'windows');
  });

  test('the variable itself wins over its _FILE; an empty variable falls back to the file', () => {
    const path = file('prefix', 'from-file\n');
    assert.equal(resolveConfig({}, { HUB_PREFIX: 'direct', HUB_PREFIX_FILE: path }).prefix, 'direct');
    assert.equal(resolveConfig({}, { HUB_PREFIX: '', HUB_PREFIX_FILE: path }).prefix, 'from-file');
  });

  test('a password read from COUCHDB_URL_FILE is allowed: it is not in the config file', () => {
    const path = file('couch-url', 'http://admin:secret@couch:5984\n');
    const config = resolveConfig({ mapping: { couchdbUrl: 'http://couch-in-file:5984' } }, { COUCHDB_URL_FILE: path });
    assert.equal(config.mapping.couchdbUrl, 'http://admin:secret@couch:5984');
  });

  test('an unreadable _FILE names the variable, the file, and what to do', () => {
    const missing = join(dir, 'no-such-secret');
    const message = errorOf(() => resolveConfig({}, { REDIS_URL_FILE: missing }));
    assert.equal(message, `REDIS_URL_FILE: cannot read ${missing} (ENOENT); point it at a readable file holding the value of REDIS_URL`);
  });

  test('a _FILE naming a folder is refused the same way', () => {
    const message = errorOf(() => resolveConfig({}, { HUB_PREFIX_FILE: dir }));
    assert.match(message, /^HUB_PREFIX_FILE: cannot read .* \(EISDIR\); point it at a readable file holding the value of HUB_PREFIX$/);
  });
});

describe('resolveConfig: errors name the key, what it expected, and the variable it came from', () => {
  const cases: Array<{ what: string; file?: HubConfigInput; env?: Env; message: RegExp }> = [
    { what: 'a port that is not a number', env: { HUB_HTTP_PORT: 'abc' }, message: /^ {2}http\.port: .*expected number.* \(from HUB_HTTP_PORT\)$/m },
    { what: 'a port out of range', env: { HUB_HTTP_PORT: '70000' }, message: /^ {2}http\.port: .*65535 \(from HUB_HTTP_PORT\)$/m },
    { what: 'a concurrency of 0', env: { HUB_CONCURRENCY: '0' }, message: /^ {2}delivery\.concurrency: .*>=1 \(from HUB_CONCURRENCY\)$/m },
    { what: 'a fractional concurrency', env: { HUB_CONCURRENCY: '2.5' }, message: /^ {2}delivery\.concurrency: .*expected int.* \(from HUB_CONCURRENCY\)$/m },
    { what: 'attempts that are not a number', env: { HUB_MAX_ATTEMPTS: 'many' }, message: /^ {2}delivery\.maxAttempts: .*expected number.* \(from HUB_MAX_ATTEMPTS\)$/m },
    { what: 'a prefix with a space', env: { HUB_PREFIX: 'my hub' }, message: /^ {2}prefix: expected letters, digits, "_", "\." or "-" \(from HUB_PREFIX\)$/m },
    { what: 'a prefix with a colon', env: { HUB_PREFIX: 'a:b' }, message: /^ {2}prefix: expected letters, digits, "_", "\." or "-" \(from HUB_PREFIX\)$/m },
    { what: 'an unknown log level', env: { LOG_LEVEL: 'loud' }, message: /^ {2}logLevel: .*expected one of "fatal"\|"error"\|"warn"\|"info"\|"debug"\|"trace"\|"silent" \(from LOG_LEVEL\)$/m },
    { what: 'a Redis URL that is no URL', env: { REDIS_URL: 'localhost' }, message: /^ {2}redisUrl: .*URL.* \(from REDIS_URL\)$/m },
    { what: 'an empty database name in the file', file: { mapping: { db: '' } }, message: /^ {2}mapping\.db: .*>=1 characters?$/m },
    { what: 'a duration that is not one, in the file', file: { ingress: { dedupeWindow: 'soon' } }, message: /^ {2}ingress\.dedupeWindow: expected a duration such as "30s", "15m" or "24h", got "soon"$/m },
    { what: 'a negative duration', file: { delivery: { backoffBase: '-5s' } }, message: /^ {2}delivery\.backoffBase: expected a duration such as "30s", "15m" or "24h", got "-5s"$/m },
    { what: 'a rate-limit floor of 0 (a 429 retried in a hot loop)', file: { delivery: { rateLimitFloor: 0 } }, message: /^ {2}delivery\.rateLimitFloor: expected at least "100ms": a 429 must never be retried in a hot loop$/m },
    { what: 'plugins.dirs that is not a list', file: { plugins: { dirs: './plugins' as unknown as string[] } }, message: /^ {2}plugins\.dirs: .*expected array, received string$/m },
    { what: 'channel settings that are not an object', file: { channels: { matrix: 'm.text' as unknown as Record<string, unknown> } }, message: /^ {2}channels\.matrix: .*expected record, received string$/m },
  ];
  for (const { what, file: fromFile, env, message } of cases) {
    test(what, () => {
      const text = errorOf(() => resolveConfig(fromFile ?? {}, env ?? {}));
      assert.match(text, /^invalid config:\n/);
      assert.match(text, message);
    });
  }

  test('a key from the file is not said to come from a variable', () => {
    const text = errorOf(() => resolveConfig({ http: { port: 70000 } }, {}));
    assert.match(text, /http\.port: /);
    assert.doesNotMatch(text, /\(from /);
  });

  test('every bad key is listed at once, one per line', () => {
    const text = errorOf(() => resolveConfig({ ingress: { dedupeWindow: 'soon' } }, { HUB_HTTP_PORT: 'abc', HUB_PREFIX: 'a b' }));
    const lines = text.split('\n').slice(1);
    assert.equal(lines.length, 3, text);
    assert.ok(lines.some((l) => l.includes('http.port:') && l.endsWith('(from HUB_HTTP_PORT)')));
    assert.ok(lines.some((l) => l.includes('prefix:') && l.endsWith('(from HUB_PREFIX)')));
    assert.ok(lines.some((l) => l.includes('ingress.dedupeWindow:')));
  });

  test('a bad URL holding a password does not echo the password', () => {
    const text = errorOf(() => resolveConfig({}, { REDIS_URL: 'http://user:hunter2-secret@redis:6379' }));
    assert.match(text, /redisUrl: .*\(from REDIS_URL\)/);
    assert.doesNotMatch(text, /hunter2/);
  });
});

describe('resolveConfig: no password in the config file', () => {
  test('a password in redisUrl is refused, and the variable to use is named', () => {
    const text = errorOf(() => resolveConfig({ redisUrl: 'redis://:hunter2@redis:6379' }, {}));
    assert.equal(text, 'redisUrl: a password does not belong in the config file; set REDIS_URL (or REDIS_URL_FILE) in the environment instead');
  });

  test('a user and password in mapping.couchdbUrl is refused, and the variable to use is named', () => {
    const text = errorOf(() => resolveConfig({ mapping: { couchdbUrl: 'http://admin:hunter2@couch:5984' } }, {}));
    assert.equal(text, 'mapping.couchdbUrl: a password does not belong in the config file; set COUCHDB_URL (or COUCHDB_URL_FILE) in the environment instead');
    assert.doesNotMatch(text, /hunter2/);
  });

  test('a user name without a password is fine', () => {
    assert.equal(resolveConfig({ redisUrl: 'redis://default@redis:6379' }, {}).redisUrl, 'redis://default@redis:6379');
  });

  test('a password in the environment is fine, and the file value it overrides is not checked', () => {
    const config = resolveConfig({ redisUrl: 'redis://:old-password@redis:6379' }, { REDIS_URL: 'redis://:new-password@redis:6379' });
    assert.equal(config.redisUrl, 'redis://:new-password@redis:6379');
  });
});

describe('loadConfigFile and HUB_CONFIG', () => {
  test('HUB_CONFIG naming a missing file says so and what to do', async () => {
    await assert.rejects(loadConfigFile({ HUB_CONFIG: 'conf/missing.config.ts' }, dir), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'HUB_ERR_CONFIG');
      assert.equal(err.message, 'HUB_CONFIG: conf/missing.config.ts does not exist; name an existing config file or unset HUB_CONFIG');
      return true;
    });
  });

  test('HUB_CONFIG is resolved against the working directory, and its default export is the config', async () => {
    file('other.config.ts', "export default { prefix: 'from-hub-config', http: { port: 1234 } };\n");
    const config = await loadConfigFile({ HUB_CONFIG: 'other.config.ts' }, dir);
    assert.deepEqual(config, { prefix: 'from-hub-config', http: { port: 1234 } });
  });

  test('without HUB_CONFIG, hub.config.ts of the working directory is read', async () => {
    const own = mkdtempSync(join(dir, 'cwd-'));
    writeFileSync(join(own, 'hub.config.ts'), "export default { prefix: 'from-cwd' };\n");
    assert.deepEqual(await loadConfigFile({}, own), { prefix: 'from-cwd' });
  });

  test('without any config file the config is empty (every default applies)', async () => {
    const empty = mkdtempSync(join(dir, 'empty-'));
    assert.deepEqual(await loadConfigFile({}, empty), {});
  });

  test('a config file that fails to load is named with the reason', async () => {
    const path = file('broken.config.ts', "throw new Error('typo on line 3');\n");
    await assert.rejects(loadConfigFile({ HUB_CONFIG: path }, dir), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'HUB_ERR_CONFIG');
      assert.equal(err.message, `${path}: cannot load it: typo on line 3`);
      return true;
    });
  });

  test('loadConfig overlays the environment on the file HUB_CONFIG names', async () => {
    file('overlay.config.ts', "export default { prefix: 'file-prefix', http: { port: 1234 } };\n");
    const config = await loadConfig({ HUB_CONFIG: 'overlay.config.ts', HUB_HTTP_PORT: '4321' }, dir);
    assert.equal(config.prefix, 'file-prefix');
    assert.equal(config.http.port, 4321);
  });

  test('a password in the file HUB_CONFIG names is refused at load', async () => {
    file('secret.config.ts', "export default { redisUrl: 'redis://:hunter2@redis:6379' };\n");
    await assert.rejects(loadConfig({ HUB_CONFIG: 'secret.config.ts' }, dir), /^HubError: redisUrl: a password does not belong in the config file/);
  });
});

describe('fixed bugs stay fixed (config)', () => {
  test('a Redis URL with the wrong scheme says which schemes are expected', () => {
    const text = errorOf(() => resolveConfig({}, { REDIS_URL: 'http://redis:6379' }));
    assert.match(text, /redisUrl: .*redis:\/\/.*\(from REDIS_URL\)/);
  });

  test('a CouchDB URL with the wrong scheme says which schemes are expected', () => {
    const text = errorOf(() => resolveConfig({}, { COUCHDB_URL: 'couch.internal:5984' }));
    assert.match(text, /mapping\.couchdbUrl: .*https?:\/\/.*\(from COUCHDB_URL\)/);
  });

  test('HUB_HTTP_PORT made of blanks is refused, not taken as port 0 (a random port)', () => {
    const text = errorOf(() => resolveConfig({}, { HUB_HTTP_PORT: ' ' }));
    assert.match(text, /http\.port: .*\(from HUB_HTTP_PORT\)/);
  });

  test('a bad value read from <VAR>_FILE is said to come from <VAR>_FILE, where the operator must look', () => {
    const path = file('bad-redis-url', 'redis.internal:6379\n');
    const text = errorOf(() => resolveConfig({}, { REDIS_URL_FILE: path }));
    assert.match(text, /redisUrl: .*\(from REDIS_URL_FILE\)$/m);
  });

  test('a misspelt key in the config file is refused, naming it', () => {
    const text = errorOf(() => resolveConfig({ prefx: 'mine' } as HubConfigInput, {}));
    assert.match(text, /prefx/);
  });
});
