/**
 * Bad input under load, with the hub SIGKILLed once in the middle: every
 * seventh entry is malformed in one of the ways producers get it wrong. Each
 * good entry is delivered; each bad one ends in the dead-letter stream with a
 * reason a person can act on (never dropped, also when the hub that read it was
 * killed); a partly good one is delivered to its known groups and dead-letters
 * the rest; the hub keeps running.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { type CustomEntry, LOAD, rigPerTest, until } from './rig.ts';

const rigs = rigPerTest();

/** The kinds of bad input, each an entry that carries its sequence number somewhere the dead letter keeps. */
const BAD: Array<(seq: number) => CustomEntry> = [
  (seq) => ({ bad: 'no body', fields: { to: '#g0', subject: `seq=${seq}` } }),
  (seq) => ({ bad: 'to without #', fields: { to: 'g0', body: `seq=${seq}` } }),
  (seq) => ({ bad: 'unknown group', fields: { to: '#nobody', body: `seq=${seq}` } }),
  (seq) => ({ bad: 'content not JSON', fields: { content: `{"to":"#g0","body":"seq=${seq}"` } }),
  (seq) => ({ bad: 'body over 64 KiB', fields: { to: '#g0', body: `seq=${seq} ${'x'.repeat(70_000)}` } }),
  (seq) => ({ bad: 'unknown channel', fields: { to: '#g0', channels: 'pigeon', body: `seq=${seq}` } }),
  (seq) => ({ bad: 'one group unknown', deliveredTo: ['#g1'], fields: { to: '#g1,#nobody', format: 'text', body: `bad-input seq=${seq}` } }),
];

describe('faults: bad input', () => {
  test('every seventh entry malformed, the hub SIGKILLed once: good ones delivered, bad ones dead-lettered with a reason', async () => {
    const r = await rigs.start({ scenario: 'bad-input/under-load', channels: ['matrix'] });
    const rooms = Array.from({ length: 8 }, () => r.room());
    r.writeMapping(Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])));
    let hub = await r.hub('hub 1');
    await r.worker('matrix');
    let bad = 0;
    await r.produce({
      count: LOAD,
      perSecond: 300,
      groupOf: (seq) => `#g${seq % 4}`,
      entryOf: (seq) => (seq % 7 === 0 ? BAD[bad++ % BAD.length]!(seq) : undefined),
      during: async (sent) => {
        await until('load', () => sent() >= LOAD * 0.4);
        await hub.kill('SIGKILL');
        hub = await r.hub('hub 2');
      },
    });
    const figures = await r.settle();

    // The heaviest inputs, straight at the running hub: its memory stays bounded.
    const rssMb = (field: 'VmRSS' | 'VmHWM') => Number(readFileSync(`/proc/${hub.pid}/status`, 'utf8').match(new RegExp(`${field}:\\s+(\\d+)`))?.[1] ?? 0) / 1024;
    const before = rssMb('VmRSS');
    const deadBefore = await r.redis.xlen(`${r.prefix}:dead`);
    const heavy = [
      ['content', JSON.stringify({ to: '#g0', body: 'x'.repeat(50 * 1024 * 1024) })],
      ['content', `${'['.repeat(10_000)}${']'.repeat(10_000)}`],
      ['to', Array.from({ length: 1000 }, (_, i) => `#group${i}`).join(','), 'body', 'a thousand groups'],
      ['to', '#g0', 'body', Buffer.from([0xff, 0xfe, 0x00, 0x41]).toString('latin1'), 'subject', 'binary'],
      // More fields than Lua can unpack, and a field name of 1 MB: dead-lettered with a bounded copy.
      ['to', '#g0', ...Array.from({ length: 4000 }, (_, i) => [`extra${i}`, 'v']).flat()],
      ['to', '#g0', 'n'.repeat(1024 * 1024), 'v'],
    ];
    for (let round = 0; round < 3; round += 1) for (const fields of heavy) await r.redis.xadd(`${r.prefix}:in`, '*', ...fields);
    await until('the heavy entries dead-lettered', async () => (await r.redis.xlen(`${r.prefix}:dead`)) >= deadBefore + 15, 300_000);
    const heavyLetters = (await r.redis.xrange(`${r.prefix}:dead`, '-', '+')).slice(deadBefore);
    r.notes.largestHeavyDeadLetterKb = Math.ceil(Math.max(...heavyLetters.map(([, flat]) => flat.reduce((n, v) => n + Buffer.byteLength(v), 0))) / 1024);
    assert.ok((r.notes.largestHeavyDeadLetterKb as number) <= 1024, 'dead letters keep a bounded copy');
    r.notes.hubRssMb = { beforeHeavy: Math.round(before), afterHeavy: Math.round(rssMb('VmRSS')), peak: Math.round(rssMb('VmHWM')) };

    const kinds: Record<string, number> = {};
    for (const s of r.sent.values()) if (s.bad) kinds[s.bad] = (kinds[s.bad] ?? 0) + 1;
    r.notes.badKinds = kinds;
    r.notes.hubRunning = hub.running;
    r.report(figures);
    assert.ok(hub.running, 'the hub keeps running after the heaviest inputs');
    assert.equal(figures.dead, figures.bad, 'one dead letter per bad entry, none for the good ones');
    for (const reason of Object.keys(figures.reasons)) assert.match(reason, /^ingress: /);
  });
});
