/** The matrix watcher's reading of a /sync answer: which signs of acknowledgement it finds, table-tested. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SyncResponse } from '../../plugins/matrix/client.ts';
import { SYNC_FILTER } from '../../plugins/matrix/watcher.ts';
import { syncSignals } from '../../plugins/matrix/sync-signals.ts';

const BOT = '@bot:hs.test';
const ROOM = '!room:hs.test';
const ev = (event_id: string, sender: string, type: string, content: Record<string, unknown> = {}, ts = 1000) => ({ event_id, sender, type, content, origin_server_ts: ts });
const sync = (timeline: object[], ephemeral: object[] = []): SyncResponse =>
  ({ next_batch: 's9', rooms: { join: { [ROOM]: { timeline: { events: timeline }, ephemeral: { events: ephemeral } } } } }) as SyncResponse;
const receipt = (content: Record<string, unknown>) => ({ type: 'm.receipt', content });

describe('matrix watcher: signs of acknowledgement in a /sync answer', () => {
  const cases: Array<{ what: string; response: SyncResponse; relations?: string[]; receipts?: string[]; timeline?: string[] }> = [
    {
      what: 'a reaction (m.annotation) by a person',
      response: sync([ev('$r', '@alice:hs.test', 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$n', key: '👍' } })]),
      relations: ['reaction $n by @alice:hs.test'],
      timeline: ['$r'],
    },
    {
      what: 'a reply (m.in_reply_to)',
      response: sync([ev('$m', '@alice:hs.test', 'm.room.message', { body: 'ok', 'm.relates_to': { 'm.in_reply_to': { event_id: '$n' } } })]),
      relations: ['reply $n by @alice:hs.test'],
    },
    {
      what: 'a message in a thread on the notification (its fallback reply counted once)',
      response: sync([ev('$m', '@alice:hs.test', 'm.room.message', { 'm.relates_to': { rel_type: 'm.thread', event_id: '$n', is_falling_back: true, 'm.in_reply_to': { event_id: '$n' } } })]),
      relations: ['reply $n by @alice:hs.test'],
    },
    {
      what: 'a reply inside a thread to another message of it: both the thread root and the replied-to event',
      response: sync([ev('$m', '@alice:hs.test', 'm.room.message', { 'm.relates_to': { rel_type: 'm.thread', event_id: '$root', 'm.in_reply_to': { event_id: '$other' } } })]),
      relations: ['reply $root by @alice:hs.test', 'reply $other by @alice:hs.test'],
    },
    {
      what: 'the bot\'s own reactions and replies are not acknowledgements',
      response: sync([ev('$r', BOT, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$n', key: '✅' } })]),
      relations: [],
      timeline: ['$r'],
    },
    {
      what: 'an edit (m.replace) or a reaction without m.annotation is not one',
      response: sync([
        ev('$e', '@alice:hs.test', 'm.room.message', { 'm.relates_to': { rel_type: 'm.replace', event_id: '$n' } }),
        ev('$r', '@alice:hs.test', 'm.reaction', { 'm.relates_to': { rel_type: 'm.reference', event_id: '$n' } }),
      ]),
      relations: [],
    },
    {
      what: 'read receipts: m.read and m.read.private, with their thread; the bot\'s own left out',
      response: sync([], [receipt({
        $a: { 'm.read': { '@alice:hs.test': { ts: 1 }, [BOT]: { ts: 1 } } },
        $b: { 'm.read.private': { '@bob:hs.test': { ts: 2 } }, 'm.read': { '@carol:hs.test': { ts: 3, thread_id: 'main' } } },
        $c: { 'm.read': { '@dave:hs.test': { ts: 4, thread_id: '$root' } } },
      })]),
      receipts: ['$a @alice:hs.test', '$b @carol:hs.test main', '$b @bob:hs.test', '$c @dave:hs.test $root'],
    },
    {
      what: 'malformed receipts and other ephemeral events are skipped',
      response: sync([], [{ type: 'm.typing', content: { user_ids: ['@alice:hs.test'] } }, receipt({ $a: 'nonsense', $b: { 'm.read': [] } })]),
      receipts: [],
    },
  ];
  for (const c of cases) {
    test(c.what, () => {
      const [room] = syncSignals(c.response, BOT);
      if (c.relations) assert.deepEqual(room?.relations.map((r) => `${r.how} ${r.eventId} by ${r.by}`) ?? [], c.relations);
      if (c.receipts) assert.deepEqual((room?.receipts ?? []).map((r) => [r.eventId, r.by, r.threadId].filter(Boolean).join(' ')).sort(), c.receipts.sort());
      if (c.timeline) assert.deepEqual(room?.timeline, c.timeline);
    });
  }

  test('an answer without rooms has no signs', () => {
    assert.deepEqual(syncSignals({ next_batch: 's1' }, BOT), []);
  });

  test('the filter keeps the sync light: two event types, relations without bodies, receipts, no state, presence or account data', () => {
    const filter = JSON.parse(SYNC_FILTER) as Record<string, any>;
    assert.deepEqual(filter.room.timeline.types, ['m.room.message', 'm.reaction']);
    assert.ok(filter.room.timeline.limit <= 50);
    assert.deepEqual(filter.room.ephemeral.types, ['m.receipt']);
    assert.deepEqual([filter.room.state.not_types, filter.presence.not_types, filter.account_data.not_types, filter.room.account_data.not_types], [['*'], ['*'], ['*'], ['*']]);
    assert.ok(filter.event_fields.includes('content.m\\.relates_to') && !filter.event_fields.includes('content'));
  });
});
