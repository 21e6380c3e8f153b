/**
 * A slow target must not hold back the other targets (README, "Guarantees":
 * "different targets proceed in parallel", "other targets go on meanwhile").
 *
 * FAILS today: the worker's TargetScheduler counts every delivery it holds,
 * also those queued behind a target that is waiting (timeouts, backoff, a long
 * 429), against its capacity (max(concurrency × 8, delivery.batchSize × 2));
 * once that many deliveries wait for one slow target, the consumer loop stops
 * reading the stream (`ready: () => scheduler.hasRoom()`), and every other
 * target of the channel waits until the slow target's queue drains.
 *
 * Here the capacity is made small (`--concurrency 4`, `delivery.batchSize 10`:
 * 32) so that 48 deliveries to one unanswering room show it in seconds; with
 * the defaults (64, 200: capacity 512) it takes 512 deliveries queued for one
 * slow target, and with the default timeout (30 s), attempts (8) and backoff
 * (1 s … 5 min) each of them holds the queue for minutes.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { killAll } from '../support/processes.ts';
import { Rig } from './rig.ts';

let rig: Rig | undefined;

afterEach(async () => {
  const problems = (await rig?.close()) ?? [];
  rig = undefined;
  if (problems.length) throw new Error(problems.join('\n'));
});
after(killAll);

describe('faults: head-of-line blocking', () => {
  test('many deliveries queued for one unanswering room do not hold back the other rooms', async () => {
    rig = await Rig.start({ scenario: 'poison/slow-many', channels: ['matrix'], env: { HUB_MAX_ATTEMPTS: '2' }, delivery: { timeout: '300ms', batchSize: 10 } });
    const r = rig;
    const rooms = Array.from({ length: 6 }, () => r.room());
    const slow = r.room();
    r.writeMapping({
      ...Object.fromEntries([0, 1, 2].map((g) => [`#p${g}`, { matrix: [...rooms.slice(g * 2, g * 2 + 2), slow] }])),
      ...Object.fromEntries([0, 1, 2].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])),
    });
    const poisoned = 48;
    r.hs.failNext(poisoned * 2 + 10, 'timeout', new RegExp(`^PUT .*/rooms/${encodeURIComponent(slow)}/send/`));
    await r.hub();
    await r.worker('matrix', { concurrency: 4 });
    // 48 messages that also reach the slow room, then 552 to the good rooms only.
    await r.produce({ count: 600, perSecond: 300, groupOf: (seq) => (seq <= poisoned ? `#p${seq % 3}` : `#g${seq % 3}`) });
    const figures = await r.settle(90_000);
    const later = r.latency((id) => id !== slow, poisoned);
    r.notes.goodRoomsLatencyMs = r.latency((id) => id !== slow);
    r.notes.laterMessagesLatencyMs = later;
    r.report(figures);
    assert.ok(later.p99 < 5_000, `later messages to the good rooms waited ${later.p50} ms (p50), ${later.p99} ms (p99) behind the slow room`);
  });
});
