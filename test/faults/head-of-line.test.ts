/**
 * A slow target must not hold back the other targets (README, "Guarantees":
 * "different targets proceed in parallel", "other targets go on meanwhile").
 *
 * The worker's TargetScheduler counts at most `perTarget` (8) deliveries of
 * any one target against its read-ahead capacity (max(concurrency × 8,
 * delivery.batchSize × 2)); were every delivery held for a waiting target
 * counted, once that many waited for one slow target the consumer loop would
 * stop reading the stream (`ready: () => scheduler.hasRoom()`), and every
 * other target of the channel would wait until the slow target's queue
 * drained.
 *
 * Here the capacity is small (`--concurrency 4`, `delivery.batchSize 10`: 32)
 * and 48 deliveries queue for one room that answers nothing until the test
 * lets it: what is asserted is an order of events, not a duration. Every
 * message to the other rooms arrives while the slow room has taken none (its
 * first delivery still being retried, 47 behind it); then the slow room is let
 * through and gets all 48, in order.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rigPerTest, until } from './rig.ts';

const rigs = rigPerTest();

describe('faults: head-of-line blocking', () => {
  test('many deliveries queued for one unanswering room do not hold back the other rooms', async (t) => {
    // Attempts enough that the slow room's first delivery is still being retried when the test lets the room answer;
    // a timeout long enough that no good room's send times out on a loaded machine (each slow attempt then holds a slot 10 s).
    const r = await rigs.start({ scenario: 'poison/slow-many', channels: ['matrix'], env: { HUB_MAX_ATTEMPTS: '1000' }, delivery: { timeout: '10s', batchSize: 10 } });
    const rooms = Array.from({ length: 6 }, () => r.room());
    const slow = r.room();
    r.writeMapping({
      ...Object.fromEntries([0, 1, 2].map((g) => [`#p${g}`, { matrix: [...rooms.slice(g * 2, g * 2 + 2), slow] }])),
      ...Object.fromEntries([0, 1, 2].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])),
    });
    const poisoned = 48;
    // More unanswered sends than it can make meanwhile (one per 10 s timeout at most); a long list would slow every request down.
    r.hs.failNext(200, 'timeout', new RegExp(`^PUT .*/rooms/${encodeURIComponent(slow)}/send/`));
    await r.hub();
    await r.worker('matrix', { concurrency: 4 });
    // 48 messages that also reach the slow room, then 552 to the good rooms only.
    await r.produce({ count: 600, perSecond: 300, groupOf: (seq) => (seq <= poisoned ? `#p${seq % 3}` : `#g${seq % 3}`) });

    const waiting = async () => {
      const f = await r.figures();
      return f.sent - f.delivered;
    };
    await until('every message in the good rooms while the slow room answers nothing', async () => (await waiting()) === poisoned, 300_000);
    assert.equal(r.hs.messages(slow).length, 0, 'the slow room took nothing meanwhile');
    assert.equal((await r.deadLetters()).count, 0, 'its first delivery is still being retried, the others wait behind it');
    const slowSends = r.hs.requests().filter((q) => q.method === 'PUT' && q.path.includes(encodeURIComponent(slow)) && q.path.includes('/send/')).length;
    r.notes.slowRoomAttemptsMeanwhile = slowSends;
    r.notes.goodRoomsLatencyMs = r.latency((id) => id !== slow);
    r.notes.laterMessagesLatencyMs = r.latency((id) => id !== slow, poisoned);
    t.diagnostic(`later messages to the good rooms: ${JSON.stringify(r.notes.laterMessagesLatencyMs)} ms; the slow room's attempts meanwhile: ${slowSends}`);

    // Let the slow room answer: its 48 deliveries go through, in order.
    r.hs.clearFaults();
    const figures = await r.settle();
    r.report(figures);
    assert.equal(figures.dead, 0);
    const seqs = r.hs.messages(slow).map((e) => Number(/seq=(\d+)/.exec(String(e.content.body))?.[1]));
    assert.equal(seqs.length, poisoned);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), `the slow room's messages in order: ${seqs.join(', ')}`);
  });
});
