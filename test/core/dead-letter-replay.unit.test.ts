/** What `hub dead replay` (and the console's replay) sends again for an ingress dead letter. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { replayOf } from '../../core/journal/dead-letter.ts';

test('an ingress dead letter is replayed with every field a producer sent, the producer and key included, and none of its own', () => {
  const letter = {
    stage: 'ingress', entry: '1-0', reason: 'the group #gone is not in the mapping', at: '2026-12-04T20:00:00Z',
    to: '#gone', subject: 'Disk full', body: 'db-1', format: 'text', id: 'disk-1', channels: 'matrix', key: 'disk', producer: 'alertmanager',
  };
  assert.deepEqual(replayOf(letter), {
    stage: 'ingress',
    fields: { to: '#gone', subject: 'Disk full', body: 'db-1', format: 'text', id: 'disk-1', channels: 'matrix', key: 'disk', producer: 'alertmanager' },
  });
});
