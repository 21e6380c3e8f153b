/**
 * End-to-end encryption, end to end: `hub start` as a child process with a
 * crypto store (MATRIX_CRYPTO_STORE, MATRIX_CRYPTO_KEY), the spec-checking
 * fake homeserver relaying keys and to-device messages, and second clients
 * (matrix-js-sdk with their own crypto) that must decrypt what the hub sent:
 * before and after a restart, after SIGKILL, with the key written in hex,
 * while the homeserver misses the crypto's first syncs, and on a device added
 * while the hub was down. The homeserver never holds an
 * m.room.message in an encrypted room; with crypto off, the hub refuses and
 * sends nothing at all.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { runHub } from '../support/processes.ts';
import { type E2ee, startE2ee } from './fixture.ts';

describe('matrix end-to-end encryption: hub → encrypted room → another client decrypts', () => {
  let e: E2ee;
  const key = randomBytes(32);

  before(async () => {
    e = await startE2ee('e2ee', key.toString('base64'));
  });
  after(async () => {
    await e?.close();
  });

  /** Send `body`, expect it sent, and each reader decrypts it; its entry id. */
  async function deliver(body: string, readers = [e.phone]): Promise<string> {
    const id = await e.send(body);
    const outcome = await e.outcome(id);
    assert.equal(outcome.fields.type, 'sent', outcome.fields.error);
    await e.assertDecrypts(outcome.fields.peer!, body, readers);
    return id;
  }

  test('the hub encrypts into an encrypted room; another client decrypts; hub status lists it as sent', async () => {
    const hub = await e.startHub('hub 1');
    const id = await deliver('disk almost full');
    const status = await runHub(['status', id], { env: e.env });
    assert.match(status.stdout, /sent +matrix/);
    // TODO(blocked): `hub status` prints no receipt details (core/cli/status.ts, core/status/message.ts), so `details.encrypted` is not shown yet.
    await hub.kill('SIGTERM');
  });

  test('after a restart: the same device (no key upload refused), and the other client still decrypts', async () => {
    const hub = await e.startHub('hub 2');
    await deliver('after restart');
    await hub.kill('SIGTERM');
    assert.ok(!hub.output.some((l) => /refused|failed to start|already exists/i.test(l)), hub.output.filter((l) => /refused|failed|exists/i.test(l)).join('\n'));
  });

  test('the same key written in hex (openssl rand -hex 32) opens the same store: same device, it decrypts', async () => {
    const hub = await e.startHub('hub with the hex key', { MATRIX_CRYPTO_KEY: key.toString('hex') });
    await deliver('the key in hex');
    await hub.kill('SIGTERM');
    assert.ok(!hub.output.some((l) => /failed to start|refused/i.test(l)), hub.output.filter((l) => /failed|refused/i.test(l)).join('\n'));
  });

  test('after SIGKILL mid-life: the next process encrypts with the same store, and it decrypts', async () => {
    const hub = await e.startHub('hub 3');
    await deliver('before the kill');
    await hub.kill('SIGKILL');
    const next = await e.startHub('hub 4');
    await deliver('after the kill');
    await next.kill('SIGTERM');
    assert.equal(await e.deadLetters(), 0);
  });

  test("the homeserver fails the crypto's first syncs: deliveries wait for it (no attempt spent), then go", async () => {
    e.hs.failNext(2, { status: 500, errcode: 'M_UNKNOWN', error: 'starting up' }, /^GET \/_matrix\/client\/v3\/sync$/);
    // One attempt each: a wait counted as an attempt would be a dead letter.
    const hub = await e.startHub('hub with a slow homeserver', { HUB_MAX_ATTEMPTS: '1' });
    await deliver('while the crypto starts');
    const failed = await hub.waitFor(/the first sync failed; retrying/);
    assert.match(failed, /"err":"[^"]*starting up/, 'the homeserver\'s reason, as a sentence');
    assert.doesNotMatch(failed, /"stack"|\\n\s+at /, 'no stack trace in the log');
    assert.equal(await e.deadLetters(), 0);
    await hub.kill('SIGTERM');
  });

  test('a device added while the hub was down gets the room keys too', async () => {
    const laptop = await e.newDevice();
    const hub = await e.startHub('hub 5');
    await deliver('for every device', [e.phone, laptop]);
    await hub.kill('SIGTERM');
  });

  test('crypto switched off: an encrypted room is refused, with the reason, and no event at all', async () => {
    const before = e.hs.events(e.room).length;
    const hub = await e.startHub('hub without crypto', { MATRIX_CRYPTO_STORE: '', MATRIX_CRYPTO_KEY: '' });
    const outcome = await e.outcome(await e.send('must not leak'));
    assert.equal(outcome.fields.type, 'dead');
    assert.match(outcome.fields.error!, /end-to-end encrypted and this hub has no encryption configured/);
    assert.equal(e.hs.events(e.room).length, before, 'nothing was sent');
    await hub.kill('SIGTERM');
  });
});
