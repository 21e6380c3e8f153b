/**
 * MATRIX_CRYPTO_KEY as people type it: `openssl rand -hex 32` and
 * `openssl rand -base64 32` both work (and mean the same bytes); anything else
 * is refused with a sentence naming the accepted forms, never the value.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import plugin from '../../plugins/matrix/index.ts';
import { runHub } from '../support/processes.ts';

const base = { homeserver: 'https://hs.example', userId: '@bot:hs.example', accessToken: 'secret-token', deviceId: 'HUBDEVICE', cryptoStore: '/tmp/store' };
const FORMS = /MATRIX_CRYPTO_KEY must be 32 bytes, written as 64 hex characters \(openssl rand -hex 32\) or in base64 \(openssl rand -base64 32\)/;

function keyOf(cryptoKey: string): Uint8Array {
  return plugin.settings.schema.parse({ ...base, cryptoKey }).cryptoKey!;
}

function refusal(cryptoKey: string): string {
  const parsed = plugin.settings.schema.safeParse({ ...base, cryptoKey });
  assert.equal(parsed.success, false, 'refused');
  return parsed.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
}

describe('MATRIX_CRYPTO_KEY', () => {
  const bytes = randomBytes(32);

  test('64 hex characters (openssl rand -hex 32), either case, with the newline a shell or a file leaves', () => {
    assert.deepEqual(Buffer.from(keyOf(bytes.toString('hex'))), bytes);
    assert.deepEqual(Buffer.from(keyOf(`${bytes.toString('hex').toUpperCase()}\n`)), bytes);
  });

  test('base64 (openssl rand -base64 32), padded or not, and URL-safe base64: the same bytes as the hex form', () => {
    assert.deepEqual(Buffer.from(keyOf(bytes.toString('base64'))), bytes);
    assert.deepEqual(Buffer.from(keyOf(bytes.toString('base64').replace(/=$/, ''))), bytes);
    assert.deepEqual(Buffer.from(keyOf(bytes.toString('base64url'))), bytes);
  });

  const bad: Array<[string, string]> = [
    ['a password', 'correct horse battery staple'],
    ['hex one character short', bytes.toString('hex').slice(1)],
    ['hex of 16 bytes', randomBytes(16).toString('hex')],
    ['hex of 48 bytes', randomBytes(48).toString('hex')],
    ['base64 of 24 bytes', randomBytes(24).toString('base64')],
    ['base64 of 33 bytes', randomBytes(33).toString('base64')],
    ['base64 with a stray character', `${bytes.toString('base64').slice(0, 20)}!${bytes.toString('base64').slice(21)}`],
    ['hex with a 0x prefix and a space inside', `0x${bytes.toString('hex').slice(0, 30)} ${bytes.toString('hex').slice(30)}`],
  ];
  for (const [what, value] of bad) {
    test(`refused with a sentence that names the accepted forms, without the value: ${what}`, () => {
      const message = refusal(value);
      assert.match(message, /^cryptoKey: /);
      assert.match(message, FORMS);
      assert.ok(!message.includes(value), 'the value is not repeated');
      assert.ok(!message.includes(value.slice(0, 12)), 'not even a part of it');
    });
  }

  test('a crypto store without a key says which key to make', () => {
    const parsed = plugin.settings.schema.safeParse(base);
    assert.equal(parsed.success, false);
    assert.match(parsed.error!.issues[0]!.message, /MATRIX_CRYPTO_STORE needs MATRIX_CRYPTO_KEY \(32 bytes, written as 64 hex characters/);
  });

  test('`hub plugins` with a malformed key: the sentence, no stack trace, no value', async () => {
    const value = `not-a-key-${randomBytes(6).toString('hex')}`;
    const { code, stdout } = await runHub(['plugins'], {
      env: {
        MATRIX_HOMESERVER: 'http://127.0.0.1:9',
        MATRIX_USER_ID: '@bot:hs.example',
        MATRIX_ACCESS_TOKEN: 'syt-test-token',
        MATRIX_DEVICE_ID: 'HUBDEVICE',
        MATRIX_CRYPTO_STORE: '/tmp/hub-crypto-key-test-never-made',
        MATRIX_CRYPTO_KEY: value,
        REDIS_URL: 'redis://127.0.0.1:6379',
        LOG_LEVEL: 'warn',
      },
    });
    assert.match(stdout, FORMS);
    assert.match(stdout, /MATRIX_CRYPTO_KEY/);
    assert.ok(!stdout.includes(value), stdout);
    assert.doesNotMatch(stdout, /^\s+at /m, 'no stack trace');
    assert.ok(code !== null, 'it ended on its own');
  });
});
