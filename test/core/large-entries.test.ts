/**
 * Entries with very many or very large fields, through a running hub: each one
 * ends delivered or dead-lettered (never back at every takeover), and a dead
 * letter keeps a bounded copy of it — the fields the hub knows, a few others,
 * and a count of what it left out, said in the reason.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startWebhookServer, type TestWebhookServer } from '../servers/webhook.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';

/** Bytes of a dead letter as stored: every name and value. */
const sizeOf = (letter: Record<string, string>) => Object.entries(letter).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
/** What a dead letter may weigh: the known fields at twice the body limit each, as many again for the others, and change. */
const BOUND = 9 * 2 * 64 * 1024;

const manyFields = (n: number, prefix = 'extra', value = 'v') => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, value]));

describe('entries with very many or very large fields', () => {
  let receiver: TestWebhookServer;
  let hub: TestHub;

  before(async () => {
    receiver = await startWebhookServer();
    hub = await startTestHub({
      name: 'large-entries',
      mapping: { '#admins': { webhook: [receiver.url('/admins')] }, '#broken': { webhook: [receiver.url('/broken')] } },
      config: { plugins: { dirs: [], modules: ['./plugins/webhook/index.ts'] }, delivery: { claimIdle: 1000 } },
    });
  });
  after(async () => {
    await hub?.stop();
    await receiver?.close();
  });

  async function deadLetterOf(entry: string): Promise<Record<string, string>> {
    return eventually(`the dead letter of ${entry}`, async () => (await hub.read('dead')).find((d) => d.entry === entry), 30_000);
  }
  /** Nothing left behind: the ingress stream emptied, nothing pending. */
  async function nothingLeft(): Promise<void> {
    await eventually('the ingress stream emptied', async () => (await hub.redis.xlen(`${hub.prefix}:in`)) === 0, 30_000);
    const [pending] = (await hub.redis.xpending(`${hub.prefix}:in`, 'hub')) as [number];
    assert.equal(pending, 0);
  }

  test('4,000 fields and no body: dead-lettered once, with the known fields, a few others, and what was left out', async () => {
    const id = await hub.send({ to: '#admins', subject: 'four thousand', ...manyFields(4000) });
    const letter = await deadLetterOf(id);
    assert.match(letter.reason!, /^`body` is missing: give the message text \(3984 more field\(s\) of \d+ KiB were not kept in this dead letter\)$/);
    assert.equal(letter.to, '#admins');
    assert.equal(letter.subject, 'four thousand');
    assert.equal(letter.extra0, 'v', 'the first few unknown fields are kept');
    assert.equal(letter.extra16, undefined);
    assert.match(letter.dropped!, /^3984 field\(s\), \d+ KiB$/);
    assert.ok(Object.keys(letter).length < 40, `${Object.keys(letter).length} fields`);
    await nothingLeft();
    assert.equal((await hub.read('dead')).filter((d) => d.entry === id).length, 1);
  });

  test('10,000 fields around a good message: delivered once, the unknown fields ignored', async () => {
    const id = await hub.send({ ...manyFields(10_000), to: '#admins', body: 'ten thousand' });
    await eventually('the delivery', () => receiver.requests.some((r) => (r.json as { messageId?: string }).messageId === id));
    await nothingLeft();
    const deliveries = receiver.requests.filter((r) => (r.json as { messageId?: string }).messageId === id);
    assert.equal(deliveries.length, 1);
    assert.equal((deliveries[0]!.json as { body: string }).body, 'ten thousand');
    assert.deepEqual((await hub.read('dead')).filter((d) => d.entry === id), []);
  });

  test('a 1 MB field name: the dead letter leaves it out and stays small', async () => {
    const name = 'n'.repeat(1024 * 1024);
    const id = await hub.send({ to: '#admins', [name]: 'value' });
    const letter = await deadLetterOf(id);
    assert.equal(letter[name], undefined);
    assert.match(letter.reason!, /^`body` is missing.*\(1 more field\(s\) of 1\.0 MiB were not kept in this dead letter\)$/);
    assert.ok(sizeOf(letter) < 4096, `${sizeOf(letter)} bytes`);
    await nothingLeft();
  });

  test('a hundred unknown fields of 100 KB each: the dead letter keeps a bounded copy', async () => {
    const id = await hub.send({ to: '#admins', ...manyFields(100, 'big', 'x'.repeat(100 * 1024)) });
    const letter = await deadLetterOf(id);
    assert.ok(sizeOf(letter) <= BOUND, `${sizeOf(letter)} bytes`);
    assert.match(letter.reason!, /\(\d+ more field\(s\) of \d+\.\d MiB were not kept in this dead letter\)$/);
    await nothingLeft();
  });

  test('4,000 fields and a routing script Redis refuses: dead-lettered by the fallback, not back at every takeover', async () => {
    await hub.redis.set(`${hub.prefix}:order:webhook:${receiver.url('/broken')}`, 'not a list');
    const id = await hub.send({ to: '#broken', body: 'cannot be routed', ...manyFields(4000) });
    const letter = await deadLetterOf(id);
    assert.match(letter.reason!, /could not route it .*WRONGTYPE.*report it.*\(3984 more field\(s\)/);
    assert.equal(letter.body, 'cannot be routed');
    await nothingLeft();
    const later = await hub.send({ to: '#admins', body: 'after it' });
    await eventually('the next entry delivered', () => receiver.requests.some((r) => (r.json as { messageId?: string }).messageId === later));
    assert.equal((await hub.read('dead')).filter((d) => d.entry === id).length, 1, 'dead-lettered once');
    assert.deepEqual(receiver.requests.filter((r) => r.path === '/broken').length, 0, 'nothing of the failed script was left to deliver');
  });
});
