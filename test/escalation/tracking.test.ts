/**
 * The matrix channel's memory of notification events (plugins/matrix/tracking.ts)
 * against the real Redis: what a receipt covers (sync order first, timestamps
 * as the fallback, threads), and the race of a person faster than the sender.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { Acknowledgement, PluginContext } from '../../core/plugin-api.ts';
import matrix from '../../plugins/matrix/index.ts';
import type { MatrixSettings } from '../../plugins/matrix/settings.ts';
import { EventTracker, type Tracked } from '../../plugins/matrix/tracking.ts';
import { pluginContext } from '../support/plugin-context.ts';

const ROOM = '!ops:hs.test';
const settings = { homeserver: 'http://127.0.0.1:1', userId: '@bot:hs.test', accessToken: 'token-1234567890' } as MatrixSettings;

describe('matrix event tracking', () => {
  let ctx: PluginContext<MatrixSettings> & { close(): Promise<void> };
  let tracker: EventTracker;
  let acks: string[];
  const ack = async (t: Tracked, a: Acknowledgement) => void acks.push(`${t.messageId} ${a.how} ${a.by}`);
  const noTs = async () => undefined;
  const covered = async (eventId: string, by: string, threadId?: string, tsOf: (id: string) => Promise<number | undefined> = noTs) =>
    (await tracker.readUpTo(ROOM, eventId, by, threadId, tsOf)).map((t) => t.messageId);

  beforeEach(async () => {
    ctx = await pluginContext(matrix, settings);
    tracker = new EventTracker(ctx);
    acks = [];
  });
  afterEach(() => ctx.close());

  test('a receipt covers the tracked events at or before it in sync order, not those after', async () => {
    await tracker.position(ROOM, ['$t1', '$x', '$t2', '$y']);
    await tracker.track(ROOM, '$t1', 'm1', ack);
    await tracker.track(ROOM, '$t2', 'm2', ack);
    assert.deepEqual(await covered('$x', '@alice:hs.test'), ['m1']);
    assert.deepEqual((await covered('$y', '@alice:hs.test')).sort(), ['m1', 'm2']);
    assert.deepEqual(await covered('$t2', '@alice:hs.test', 'main'), ['m1', 'm2'], 'a receipt on the main timeline');
    assert.deepEqual(await covered('$y', '@alice:hs.test', '$thread'), [], 'a receipt in another thread covers only its own event');
    assert.deepEqual(await covered('$t1', '@alice:hs.test', '$t1'), ['m1'], 'its own event, whatever the thread');
    assert.deepEqual(acks, []);
  });

  test('an event the sync never positioned: ordered by origin_server_ts', async () => {
    await tracker.position(ROOM, ['$t1']);
    await tracker.track(ROOM, '$t1', 'm1', ack);
    const ts: Record<string, number> = { $t1: 1000, $state: 2000, $old: 500 };
    assert.deepEqual(await covered('$state', '@alice:hs.test', undefined, async (id) => ts[id]), ['m1']);
    assert.deepEqual(await covered('$old', '@alice:hs.test', undefined, async (id) => ts[id]), []);
    assert.deepEqual(await covered('$unknown', '@alice:hs.test'), [], 'no timestamp to compare: not read');
  });

  test('read before the sender recorded its event (a client that sends receipts at once): acknowledged when it records it', async () => {
    await tracker.position(ROOM, ['$t1', '$later']);
    assert.deepEqual(await covered('$later', '@alice:hs.test'), [], 'nothing tracked yet');
    assert.deepEqual(await tracker.related(ROOM, '$t1', '@bob:hs.test', 'reaction'), undefined);
    await tracker.track(ROOM, '$t1', 'm1', ack);
    assert.deepEqual(acks.sort(), ['m1 reaction @bob:hs.test', 'm1 read @alice:hs.test']);
  });

  test('a read marker stays at the furthest position; an earlier receipt does not move it back', async () => {
    await tracker.position(ROOM, ['$a', '$t1', '$b']);
    await covered('$b', '@alice:hs.test');
    await covered('$a', '@alice:hs.test');
    await tracker.track(ROOM, '$t1', 'm1', ack);
    assert.deepEqual(acks, ['m1 read @alice:hs.test']);
  });

  test('positions are given once, in the order first seen; untracked events are forgotten, and so are rooms left with none', async () => {
    await tracker.position(ROOM, ['$a', '$b']);
    await tracker.position(ROOM, ['$b', '$c']);
    assert.deepEqual(await ctx.redis.zrange(ctx.key('pos', ROOM), 0, -1, 'WITHSCORES'), ['$a', '1', '$b', '2', '$c', '3']);
    await tracker.track(ROOM, '$b', 'm1', ack);
    assert.equal(await tracker.active(), true);
    const [tracked] = await tracker.all();
    assert.deepEqual(tracked, { eventId: '$b', messageId: 'm1', roomId: ROOM });
    await tracker.untrack(tracked!);
    assert.deepEqual(await tracker.all(), []);
    assert.equal(await tracker.active(), false);
  });
});
