/**
 * The signal of one call (core/abort.ts): aborted by any of its sources with
 * that source's reason, or by its timeout; released, it is no longer aborted
 * by them and its timer no longer runs.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { callSignal } from '../../core/plugin-api.ts';

test('a source aborting aborts the call with its reason', () => {
  const stop = new AbortController();
  const cutoff = new AbortController();
  const call = callSignal([stop.signal, cutoff.signal]);
  cutoff.abort(new Error('grace over'));
  assert.equal(call.signal.aborted, true);
  assert.equal((call.signal.reason as Error).message, 'grace over');
  call.release();
});

test('a source already aborted gives a call aborted from the start', () => {
  const call = callSignal([AbortSignal.abort(new Error('stopping'))]);
  assert.equal(call.signal.aborted, true);
  assert.equal((call.signal.reason as Error).message, 'stopping');
  call.release();
});

test('the timeout aborts the call with the reason given', async () => {
  const call = callSignal([new AbortController().signal], { ms: 20, reason: () => new DOMException('no answer', 'TimeoutError') });
  await once(call.signal, 'abort');
  assert.equal((call.signal.reason as DOMException).name, 'TimeoutError');
  call.release();
});

test('released, the call is unhooked from its sources and its timer is cleared', async () => {
  const stop = new AbortController();
  const call = callSignal([stop.signal], { ms: 20, reason: () => new Error('late') });
  call.release();
  stop.abort();
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(call.signal.aborted, false);
});
