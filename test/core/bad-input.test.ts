/**
 * The bad-input corpus (test/fixtures/bad-input.json) sent through a running
 * hub with a webhook channel: every bad entry becomes exactly one dead letter
 * with a reason a person can act on, every good one is delivered as the
 * receiver should see it, and the hub keeps running.
 *
 * A corpus entry: `name`, `fields` (each value a string, or a list of parts:
 * strings, `{repeat, times}` and `{sequence, count, join}`, so that 50 MB
 * cases are generated here rather than stored), then
 * - `reason`: a fragment of the dead letter's reason (exactly one dead letter,
 *   `stage: ingress`, `entry` the XADD id); `routing: true` when the entry
 *   parsed and failed on the mapping (the dead letter then holds the
 *   normalized message instead of the raw fields); `truncated`: the field too
 *   large to be kept whole in the dead letter;
 * - `delivered: true`, `paths`: the receiver paths it reaches (each once), and
 *   `expect`: fields of the delivered JSON (`null`: absent).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startWebhookServer, type ReceivedRequest, type TestWebhookServer } from '../servers/webhook.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { fromPairs } from '../../core/redis/fields.ts';

type Part = string | { repeat: string; times: number } | { sequence: string; count: number; join: string };

interface CorpusEntry {
  name: string;
  fields: Record<string, string | Part[]>;
  reason?: string;
  routing?: boolean;
  truncated?: string;
  delivered?: boolean;
  paths?: string[];
  expect?: Record<string, unknown>;
  pending?: string;
}

const corpus = JSON.parse(readFileSync(resolve(import.meta.dirname, '../fixtures/bad-input.json'), 'utf8')) as CorpusEntry[];

function build(value: string | Part[]): string {
  if (typeof value === 'string') return value;
  return value
    .map((part) => {
      if (typeof part === 'string') return part;
      if ('repeat' in part) return part.repeat.repeat(part.times);
      return Array.from({ length: part.count }, (_, i) => `${part.sequence}${i}`).join(part.join);
    })
    .join('');
}

const MAX_KEPT = 2 * 64 * 1024;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

describe('bad input through a running hub: one dead letter each, with a reason; the hub keeps running', () => {
  let receiver: TestWebhookServer;
  let hub: TestHub;
  const sent: Array<{ entry: CorpusEntry; id: string; fields: Record<string, string> }> = [];
  let dead: Array<Record<string, string>> = [];
  let finalId: string;

  before(async () => {
    receiver = await startWebhookServer();
    hub = await startTestHub({
      name: 'bad-input',
      config: {
        plugins: { dirs: [], modules: ['./plugins/webhook/index.ts'] },
        // The receiver answers from this test's own process, which the corpus's 50 MB entries keep busy: on a
        // machine running a second suite it answered one POST after the webhook's 10 s, and the retry (same
        // X-Hub-Delivery, as designed) showed as a second delivery. Such a wait is the test's, not the hub's.
        channels: { webhook: { timeoutMs: 120_000 } },
        logLevel: 'info',
      },
      mapping: {
        '#admins': { webhook: [receiver.url('/admins')] },
        '#oncall': { webhook: [receiver.url('/admins')] },
        '#users': { webhook: [receiver.url('/users')] },
        '#everyone': { include: ['#admins', '#users'] },
        '#empty': {},
      },
    });
    for (const entry of corpus) {
      const fields = Object.fromEntries(Object.entries(entry.fields).map(([k, v]) => [k, build(v)]));
      sent.push({ entry, id: await hub.send(fields), fields });
    }
    // The hub reads its stream in order: once this one is delivered, every entry before it has been routed.
    finalId = await hub.send({ to: '#admins', subject: 'after the corpus', body: 'still running' });
    await eventually('the message sent after the corpus', () => receiver.requests.some((r) => messageId(r) === finalId), 300_000);
    const expectedDead = corpus.filter((e) => e.reason !== undefined).length;
    dead = await eventually(`${expectedDead} dead letters`, async () => {
      const all = await readDead();
      return all.length >= expectedDead && all;
    });
    // Each delivered entry at each of its paths: other targets than the last message's are not ordered before it.
    const missing = () => sent.filter(({ entry, id }) => entry.paths?.some((path) => !receiver.requests.some((r) => messageId(r) === id && r.path === path)));
    await eventually('every delivered entry at each of its paths', () => missing().length === 0, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}: still missing ${missing().map((s) => s.entry.name).join(', ')}`);
    });
  });
  after(async () => {
    await hub?.stop();
    await receiver?.close();
  });

  /** The dead letters, each field as stored (the producer's own `id` field included), and the stream entry id as `streamId`. */
  async function readDead(): Promise<Array<Record<string, string>>> {
    const entries = (await hub.redis.xrange(`${hub.prefix}:dead`, '-', '+')) as Array<[string, string[]]>;
    return entries.map(([streamId, flat]) => ({ streamId, ...fromPairs(flat) }));
  }

  const messageId = (r: ReceivedRequest) => (r.json as { messageId?: string } | undefined)?.messageId;

  test('the corpus is large enough', () => {
    assert.ok(corpus.length >= 40, `${corpus.length} entries`);
    assert.ok(new Set(corpus.map((e) => e.name)).size === corpus.length, 'names are unique');
  });

  test('nothing but the corpus was dead-lettered, and the message after it was delivered', () => {
    const ours = new Set(sent.map((s) => s.id));
    assert.deepEqual(dead.filter((d) => !ours.has(d.entry!)), []);
    assert.equal(dead.length, corpus.filter((e) => e.reason !== undefined).length);
    const final = receiver.requests.filter((r) => messageId(r) === finalId);
    assert.equal(final.length, 1);
    assert.equal((final[0]!.json as { body: string }).body, 'still running');
  });

  for (const [index, entry] of corpus.entries()) {
    test(`${entry.pending ? '[reported bug] ' : ''}${entry.name}`, async () => {
      const { id, fields } = sent[index]!;
      const letters = dead.filter((d) => d.entry === id);
      const requests = receiver.requests.filter((r) => messageId(r) === id);

      if (entry.reason === undefined) {
        assert.deepEqual(letters.map((l) => l.reason), [], 'no dead letter');
      } else {
        assert.equal(letters.length, 1, `exactly one dead letter, got ${letters.length}`);
        const letter = letters[0]!;
        assert.equal(letter.stage, 'ingress');
        assert.equal(letter.entry, id);
        const reason = letter.reason ?? '';
        assert.ok(reason.includes(entry.reason), `reason ${JSON.stringify(reason.slice(0, 500))} should contain ${JSON.stringify(entry.reason)}`);
        assert.ok(reason.length <= 500, `a reason a person reads, not ${reason.length} characters`);
        assert.ok(!CONTROL.test(reason), `the reason holds a control character: ${JSON.stringify(reason.slice(0, 200))}`);
        assert.ok(!Number.isNaN(Date.parse(letter.at ?? '')), 'the dead letter says when');
        if (entry.routing) {
          assert.equal(letter.body, fields.body, 'the message comes with its dead letter, for replay');
        } else {
          // The producer's fields come with it, so that `hub dead replay` can send them again; huge ones cut.
          for (const [key, value] of Object.entries(fields)) {
            if (key === '__proto__') continue;
            if (value.length > MAX_KEPT) assert.equal(letter[key], value.slice(0, 1024), `${key} cut to its first 1024 characters`);
            else assert.equal(letter[key], value, `field ${key} kept`);
          }
          assert.equal(letter.truncated, entry.truncated);
        }
      }

      if (!entry.delivered) {
        assert.deepEqual(requests.map((r) => r.path), [], 'nothing delivered');
        return;
      }
      const paths = requests.map((r) => r.path).sort();
      if (JSON.stringify(paths) !== JSON.stringify(entry.paths)) {
        // What the hub says happened, for a failure that only shows under load.
        const events = (await hub.read('events')).filter((e) => e.entry === id);
        assert.fail(`delivered to ${JSON.stringify(paths)}, expected each of ${JSON.stringify(entry.paths)} once; the hub's events: ${JSON.stringify(events)}`);
      }
      for (const request of requests) {
        const json = request.json as Record<string, unknown>;
        assert.equal(json.messageId, id);
        for (const [key, value] of Object.entries(entry.expect ?? {})) {
          if (value === null) assert.equal(key in json, false, `${key} absent`);
          else assert.deepEqual(json[key], value, `delivered ${key}`);
        }
      }
    });
  }

  test('a repeated producer id is a duplicate: acknowledged and recorded, neither delivered again nor dead-lettered', async () => {
    const first = sent.find((s) => s.fields.id === 'corpus-all-fields');
    assert.ok(first, 'the corpus has an entry with id corpus-all-fields');
    const again = await hub.send(first.fields);
    const event = await eventually('the duplicate event', async () => (await hub.read('events')).find((e) => e.type === 'duplicate' && e.entry === again));
    assert.equal(event.first, first.id);
    const marker = await hub.send({ to: '#users', body: 'after the duplicate' });
    await eventually('the message after the duplicate', () => receiver.requests.some((r) => messageId(r) === marker));
    assert.deepEqual(receiver.requests.filter((r) => messageId(r) === again), []);
    assert.deepEqual((await readDead()).filter((d) => d.entry === again), []);
  });

  test('every dead letter has its dead event, and the hub logged no fatal error', async () => {
    const events = await hub.read('events');
    const deadEvents = events.filter((e) => e.type === 'dead' && e.stage === 'ingress');
    assert.deepEqual(new Set(deadEvents.map((e) => e.dead)), new Set(dead.map((d) => d.streamId)));
    assert.deepEqual(hub.logs.filter((line) => line.includes('"level":60')), []);
    assert.equal(await hub.redis.xlen(`${hub.prefix}:in`), 0, 'every entry was taken off the ingress stream');
  });
});
