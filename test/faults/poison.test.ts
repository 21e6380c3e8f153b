/**
 * Poison: one target that always fails does not hold back the other targets
 * of the same messages, nor later messages to other targets. A permanent
 * failure (a room the bot is not invited to) is dead-lettered at once, and
 * `hub dead replay --all` sends it again once the bot is invited. A slow one
 * (a room whose sends are never answered) is retried to its last attempt
 * while the others go on. (Whether a slow target holds the others back, as an
 * order of events, is head-of-line.test.ts; here the latencies are figures.)
 *
 * Replay while producers keep sending to the same target, two replays at once
 * (issue 11, finding 1): a replay used to write a delivery and its place in the
 * target's order list in two round trips, so a delivery routed in between, or
 * a second replay, put the order list out of stream order, two deliveries then
 * waited for each other, and the target was stuck for good; two replays
 * re-enqueued the same letters twice. Now each letter is checked, enqueued
 * (stream and order list) and deleted in one script. What must hold: nothing
 * stuck, no letter replayed twice (each named once in the two replays' output,
 * each delivery sent once), the order list in stream order whenever looked at.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { compareEntryIds } from '../../core/runtime/worker.ts';
import { LOAD, rigPerTest, until } from './rig.ts';
import { fromPairs } from '../../core/redis/fields.ts';

const rigs = rigPerTest();

describe('faults: poison deliveries', () => {
  test('a room the bot cannot join: dead-lettered at once, others unaffected; replayed once the bot is invited', async () => {
    const r = await rigs.start({ scenario: 'poison/permanent', channels: ['matrix'] });
    const rooms = Array.from({ length: 6 }, () => r.room());
    const poison = r.room({ joined: false });
    r.writeMapping({
      ...Object.fromEntries([0, 1, 2].map((g) => [`#p${g}`, { matrix: [...rooms.slice(g * 2, g * 2 + 2), poison] }])),
      ...Object.fromEntries([0, 1, 2].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])),
    });
    await r.hub();
    await r.worker('matrix');
    // Every message of the first part reaches the poison room too; the later ones only the good rooms.
    const poisoned = Math.round(LOAD * 0.66);
    await r.produce({ count: LOAD, perSecond: 300, groupOf: (seq) => (seq <= poisoned ? `#p${seq % 3}` : `#g${seq % 3}`) });
    const figures = await r.settle();
    const good = (roomId: string) => roomId !== poison;
    r.notes.goodLatencyMs = r.latency(good);
    r.notes.laterMessagesLatencyMs = r.latency(good, poisoned);
    r.report(figures);
    assert.equal(figures.dead, poisoned, 'every delivery to the poison room is dead-lettered');
    assert.match(Object.keys(figures.reasons).join('\n'), /not in room <room> and cannot join it: invite it/);
    const letters = (await r.redis.xrange(`${r.prefix}:dead`, '-', '+')).map(([, flat]) => flat);
    assert.deepEqual([...new Set(letters.map((f) => f[f.indexOf('attempts') + 1]))], ['1'], 'dead-lettered at once: one attempt each, not retried');

    // Fixed: the bot is invited. Replay every dead letter: each arrives, once, in order.
    r.hs.invite(poison, r.bot.userId);
    const replay = await r.run('dead', 'replay', '--all');
    assert.equal(replay.code, 0, replay.stdout);
    await until('the replayed deliveries', () => r.hs.messages(poison).length >= poisoned, 300_000);
    const replayed = await r.settle();
    replayed.scenario = 'poison/replayed';
    const seqs = r.hs.messages(poison).map((e) => Number(/seq=(\d+)/.exec(String(e.content.body))?.[1]));
    r.notes.replayedInOrder = seqs.every((s, i) => i === 0 || s > seqs[i - 1]!);
    r.report(replayed);
    assert.equal(replayed.dead, 0);
    assert.equal(r.hs.messages(poison).length, poisoned);
  });

  test('a room whose sends are never answered: retried to its last attempt while the other rooms go on', async () => {
    // A timeout that the other rooms' sends meet even on a loaded machine (3 attempts each, like the slow room's).
    const r = await rigs.start({ scenario: 'poison/slow', channels: ['matrix'], env: { HUB_MAX_ATTEMPTS: '3' }, delivery: { timeout: '2s' } });
    const rooms = Array.from({ length: 6 }, () => r.room());
    const slow = r.room();
    r.writeMapping({
      ...Object.fromEntries([0, 1, 2].map((g) => [`#p${g}`, { matrix: [...rooms.slice(g * 2, g * 2 + 2), slow] }])),
      ...Object.fromEntries([0, 1, 2].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])),
    });
    const poisoned = 5;
    r.hs.failNext(poisoned * 3 + 10, 'timeout', new RegExp(`^PUT .*/rooms/${encodeURIComponent(slow)}/send/`));
    await r.hub();
    await r.worker('matrix');
    // A few messages reach the slow room first; then a steady load to the good rooms only.
    await r.produce({ count: LOAD, perSecond: 300, groupOf: (seq) => (seq <= poisoned ? `#p${seq % 3}` : `#g${seq % 3}`) });
    const good = (roomId: string) => roomId !== slow;
    const figures = await r.settle();
    r.notes.goodLatencyMs = r.latency(good);
    const sends = r.hs.requests().filter((q) => q.method === 'PUT' && q.path.includes('/send/'));
    const isSlow = (q: { path: string }) => q.path.includes(encodeURIComponent(slow));
    const slowAt = sends.flatMap((q, i) => (isSlow(q) ? [i] : []));
    r.notes.slowRoomSends = slowAt.length;
    // Sends to the other rooms made while the slow room was being retried: after its second attempt, before its last.
    r.notes.goodSendsWhileSlowRetried = sends.slice(slowAt[1], slowAt.at(-1)).filter((q) => !isSlow(q)).length;
    r.report(figures);
    assert.equal(figures.dead, poisoned);
    assert.ok(slowAt.length <= poisoned * 3, `${slowAt.length} sends to the slow room`);
    const letters = (await r.redis.xrange(`${r.prefix}:dead`, '-', '+')).map(([, flat]) => flat);
    assert.deepEqual([...new Set(letters.map((f) => f[f.indexOf('attempts') + 1]))], ['3'], 'each delivery to the slow room retried to its last attempt');
    assert.ok((r.notes.goodSendsWhileSlowRetried as number) > 0, 'the other rooms went on while the slow one was retried');
  });

  test('two `dead replay --all` at once while producers keep sending to the same target: each letter replayed once, nothing stuck, the order list in stream order', async () => {
    const r = await rigs.start({ scenario: 'poison/replayed-twice-under-load', channels: ['matrix'] });
    const rooms = Array.from({ length: 4 }, () => r.room());
    // The bot is not in it yet: every delivery to it is refused for good, and dead-lettered.
    const target = r.room({ joined: false });
    r.writeMapping({ '#t': { matrix: [target] }, '#t2': { matrix: [target, rooms[0]!] }, '#g': { matrix: rooms } });
    await r.hub();
    await r.worker('matrix', { name: 'worker 1' });
    await r.worker('matrix', { name: 'worker 2' });

    const refused = Math.round(LOAD / 3);
    await r.produce({ count: refused, perSecond: 300, groupOf: (seq) => (seq % 2 ? '#t' : '#t2') });
    await r.settle();
    const letters = await r.redis.xlen(`${r.prefix}:dead`);
    assert.equal(letters, refused, 'every delivery to the target dead-lettered');

    // Fixed: the bot is invited. Producers keep sending to the target while two replays run at once.
    r.hs.invite(target, r.bot.userId);
    const orderKey = `${r.prefix}:order:matrix:${target}`;
    const snapshots = { taken: 0, outOfOrder: 0, longest: 0 };
    let replaying = true;
    const watch = (async () => {
      while (replaying) {
        const list = await r.redis.lrange(orderKey, 0, -1);
        snapshots.taken += 1;
        snapshots.longest = Math.max(snapshots.longest, list.length);
        if (list.some((id, i) => i > 0 && compareEntryIds(list[i - 1]!, id) >= 0)) snapshots.outOfOrder += 1;
        await sleep(20);
      }
    })();
    const runs: Array<{ code: number | null; stdout: string }> = [];
    await r.produce({
      count: LOAD,
      perSecond: 300,
      groupOf: (seq) => (seq % 3 === 0 ? '#g' : seq % 2 ? '#t' : '#t2'),
      during: async (sent) => {
        await until('load', () => sent() >= refused + LOAD * 0.2);
        runs.push(...(await Promise.all([r.run('dead', 'replay', '--all'), r.run('dead', 'replay', '--all')])));
      },
    });
    const figures = await r.settle(180_000);
    replaying = false;
    await watch;

    for (const run of runs) assert.equal(run.code, 0, run.stdout);
    const replayed = runs.flatMap((run) => [...run.stdout.matchAll(/^(\d+-\d+) → \d+-\d+$/gm)].map((m) => m[1]!));
    const skipped = runs.flatMap((run) => [...run.stdout.matchAll(/^(\d+-\d+): replayed or purged meanwhile/gm)].map((m) => m[1]!));
    const events = (await r.redis.xrange(`${r.prefix}:events`, '-', '+')) as Array<[string, string[]]>;
    const sentPerDelivery = new Map<string, number>();
    for (const [, flat] of events) {
      const e = fromPairs(flat);
      if (e.type === 'sent' && e.target === target) sentPerDelivery.set(e.delivery!, (sentPerDelivery.get(e.delivery!) ?? 0) + 1);
    }
    r.notes.replay = { letters, replayed: replayed.length, byRun: runs.map((run) => (run.stdout.match(/ → /g) ?? []).length), skipped: skipped.length };
    r.notes.orderListSnapshots = snapshots;
    r.notes.sentTwice = [...sentPerDelivery.values()].filter((n) => n > 1).length;
    r.notes.takeovers = r.processes.flatMap((p) => p.output).filter((line) => line.includes('took over entries left pending')).length;
    // Replayed letters join the end of their target's order, after what was sent meanwhile; the list's own order is asserted below.
    r.report(figures, { order: { notPromised: 'replayed letters join the end of their target\'s order' } });

    assert.equal(replayed.length, letters, 'every letter replayed');
    assert.equal(new Set(replayed).size, replayed.length, 'no letter replayed twice');
    assert.equal(figures.dead, 0, 'the dead-letter stream emptied');
    assert.equal(snapshots.outOfOrder, 0, 'the order list in stream order whenever looked at');
    assert.ok(snapshots.taken > 10, `${snapshots.taken} snapshots of the order list`);
    assert.equal(r.notes.sentTwice, 0, 'each delivery sent once');
    assert.equal(await r.redis.llen(orderKey), 0, 'nothing left in the order list');
  });
});
