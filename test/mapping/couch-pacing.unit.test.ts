import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CouchPacing } from '../../core/mapping/couch-pacing.ts';

const PERIOD = 300_000;
const pacing = () => new CouchPacing({ backoff: { initialMs: 1_000, maxMs: 30_000 }, refusedMaxMs: 1_000, lockout: { threshold: 5, periodMs: PERIOD } });

/** The times of `n` tries after a first one at 0, each made as soon as the pacing allows, all failing as `kind`. */
function tries(p: CouchPacing, kind: Parameters<CouchPacing['delay']>[0], n: number): number[] {
  const at = [0];
  for (let i = 1; i < n; i++) at.push(at.at(-1)! + p.delay(kind, at.at(-1)!));
  return at;
}

describe('CouchPacing: the wait before the next try at CouchDB', () => {
  test('a wrong password: a quick second try, then never more than 2 failed logins in any lockout period', () => {
    const at = tries(pacing(), 'unauthorized', 12);
    assert.ok(at[1]! <= 1_000, `the second try after ${at[1]} ms`);
    for (const start of at) {
      const inWindow = at.filter((t) => t >= start && t <= start + PERIOD).length;
      assert.ok(inWindow <= 2, `${inWindow} failed logins within 5 min of ${start}: ${at.join(', ')}`);
    }
    // And it keeps trying: 12 tries within 6 periods.
    assert.ok(at.at(-1)! < 6 * PERIOD * 1.1 + 30_000, at.join(', '));
  });

  test('two processes of one host with the same wrong password stay below the threshold of 5, whenever each started', () => {
    for (const offset of [0, 700, 150_000, 299_000, 333_000]) {
      const all = [...tries(pacing(), 'unauthorized', 10), ...tries(pacing(), 'unauthorized', 10).map((t) => t + offset)].sort((a, b) => a - b);
      // CouchDB's count: an entry made at a failure, counting every failure of the next 5 minutes.
      for (const start of all) assert.ok(all.filter((t) => t >= start && t <= start + PERIOD).length <= 4, `offset ${offset}: ${all.join(', ')}`);
    }
  });

  test('locked out: the next try waits out a whole lockout period', () => {
    assert.ok(pacing().delay('locked-out', 0) > PERIOD);
  });

  test('refused connections: never more than a second between tries, however long the outage', () => {
    const p = pacing();
    for (let i = 0; i < 50; i++) assert.ok(p.delay('refused') <= 1_000);
  });

  test('other failures back off exponentially up to 30 s, and start over after a success', () => {
    const p = pacing();
    const waits = Array.from({ length: 10 }, () => p.delay('other'));
    assert.ok(waits[0]! <= 1_000 && waits.at(-1)! >= 15_000 && waits.every((w) => w <= 30_000), waits.join(', '));
    p.succeeded();
    assert.ok(p.delay('other') <= 1_000);
  });

  test('a new kind of failure backs off afresh: CouchDB answering 503 as it starts, after a long outage, is retried within a second', () => {
    const p = pacing();
    for (let i = 0; i < 100; i++) p.delay('refused');
    assert.ok(p.delay('other') <= 1_000);
  });

  test('a success does not forget failed logins: CouchDB does not either', () => {
    const p = pacing();
    p.delay('unauthorized', 0);
    p.succeeded();
    assert.ok(p.delay('unauthorized', 1_000) > PERIOD - 1_000);
  });
});
