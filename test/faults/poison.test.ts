/**
 * Poison: one target that always fails does not hold back the other targets
 * of the same messages, nor later messages to other targets. A permanent
 * failure (a room the bot is not invited to) is dead-lettered at once, and
 * `hub dead replay --all` sends it again once the bot is invited. A slow one
 * (a room whose sends are never answered) is retried to its last attempt
 * while the others go on.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { killAll } from '../support/processes.ts';
import { LOAD, Rig, until } from './rig.ts';

let rig: Rig | undefined;

afterEach(async () => {
  const problems = (await rig?.close()) ?? [];
  rig = undefined;
  if (problems.length) throw new Error(problems.join('\n'));
});
after(killAll);

describe('faults: poison deliveries', () => {
  test('a room the bot cannot join: dead-lettered at once, others unaffected; replayed once the bot is invited', async () => {
    rig = await Rig.start({ scenario: 'poison/permanent', channels: ['matrix'] });
    const r = rig;
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
    assert.ok(r.notes.goodLatencyMs && (r.notes.goodLatencyMs as { p99: number }).p99 < 10_000, 'the good rooms are not held back');

    // Fixed: the bot is invited. Replay every dead letter: each arrives, once, in order.
    r.hs.invite(poison, r.bot.userId);
    const replay = await r.run('dead', 'replay', '--all');
    assert.equal(replay.code, 0, replay.stdout);
    await until('the replayed deliveries', () => r.hs.messages(poison).length >= poisoned, 60_000);
    const replayed = await r.settle();
    replayed.scenario = 'poison/replayed';
    const seqs = r.hs.messages(poison).map((e) => Number(/seq=(\d+)/.exec(String(e.content.body))?.[1]));
    r.notes.replayedInOrder = seqs.every((s, i) => i === 0 || s > seqs[i - 1]!);
    r.report(replayed);
    assert.equal(replayed.dead, 0);
    assert.equal(r.hs.messages(poison).length, poisoned);
  });

  test('a room whose sends are never answered: retried to its last attempt while the other rooms go on', async () => {
    rig = await Rig.start({ scenario: 'poison/slow', channels: ['matrix'], env: { HUB_MAX_ATTEMPTS: '3' }, delivery: { timeout: '500ms' } });
    const r = rig;
    const rooms = Array.from({ length: 6 }, () => r.room());
    const slow = r.room();
    r.writeMapping({
      ...Object.fromEntries([0, 1, 2].map((g) => [`#p${g}`, { matrix: [...rooms.slice(g * 2, g * 2 + 2), slow] }])),
      ...Object.fromEntries([0, 1, 2].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])),
    });
    const poisoned = 10;
    r.hs.failNext(poisoned * 3 + 10, 'timeout', new RegExp(`^PUT .*/rooms/${encodeURIComponent(slow)}/send/`));
    await r.hub();
    await r.worker('matrix');
    // A few messages reach the slow room first; then a steady load to the good rooms only.
    await r.produce({ count: LOAD, perSecond: 300, groupOf: (seq) => (seq <= poisoned ? `#p${seq % 3}` : `#g${seq % 3}`) });
    const good = (roomId: string) => roomId !== slow;
    const figures = await r.settle(90_000);
    r.notes.goodLatencyMs = r.latency(good);
    r.notes.slowRoomSends = r.hs.requests().filter((q) => q.path.includes(encodeURIComponent(slow)) && q.method === 'PUT').length;
    r.report(figures);
    assert.equal(figures.dead, poisoned);
    assert.ok((r.notes.goodLatencyMs as { p99: number }).p99 < 10_000, 'the good rooms are not held back by the slow one');
  });
});
