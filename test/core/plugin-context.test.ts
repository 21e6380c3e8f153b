/**
 * The services the plugin context gives every plugin (core/runtime/plugin-context.ts),
 * against the real Redis: the hub's redactor, a lease, the plugin's own metrics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { definePlugin, PLUGIN_API_VERSION, z } from '../../core/plugin-api.ts';
import { pluginContext } from '../support/plugin-context.ts';

const tally = definePlugin({
  name: 'tally-box',
  apiVersion: PLUGIN_API_VERSION,
  description: 'a plugin with a secret',
  settings: { schema: z.object({ token: z.string(), url: z.string() }), secrets: ['token', 'url'] },
  validateTarget: () => undefined,
  createSender: () => ({ deliver: async () => ({}) }),
});

describe('plugin context services', () => {
  let ctx: Awaited<ReturnType<typeof pluginContext<{ token: string; url: string }>>>;
  before(async () => {
    ctx = await pluginContext(tally, { token: 'tk_live_0123456789', url: 'https://bot:pa%21ss@peer.example/' });
  });
  after(() => ctx.close());

  test('redactor: the secret settings are known already, in every form; a secret the plugin adds is known from then on', () => {
    const shown = ctx.redactor.redact(`token tk_live_0123456789 (${Buffer.from('tk_live_0123456789').toString('base64')}), password pa%21ss = pa!ss`);
    assert.equal(shown, 'token [redacted] ([redacted]), password [redacted] = [redacted]');
    ctx.redactor.add('derived-session-key');
    assert.equal(ctx.redactor.redact('login with derived-session-key'), 'login with [redacted]');
    ctx.redactor.add('abc');
    assert.equal(ctx.redactor.redact('abc'), 'abc', 'three characters are a word, not a secret');
  });

  test('lease: one holder at a time under the plugin key; released, the next takes it; a holder renews its own', async () => {
    const first = ctx.lease('sync', 10_000);
    const second = ctx.lease('sync', 10_000);
    assert.equal(await first.tryAcquire(), true);
    assert.equal(await second.tryAcquire(), false, 'held by the first');
    assert.equal(await first.tryAcquire(), true, 'the holder renews');
    assert.ok((await ctx.redis.pttl(ctx.key('sync'))) > 0, 'the lease lives under key(name) with an expiry');
    await first.release();
    assert.equal(await second.tryAcquire(), true, 'free once released');
    await first.release();
    assert.equal(await first.tryAcquire(), false, 'a release by a non-holder does nothing');
    await second.release();
  });

  test('lease: acquire waits until the holder lets go', async () => {
    const holder = ctx.lease('lock', 5_000);
    const waiter = ctx.lease('lock', 5_000);
    assert.equal(await holder.tryAcquire(), true);
    let standby = 0;
    const waiting = waiter.acquire(ctx.signal, () => standby++);
    await holder.release();
    assert.equal(await waiting, true);
    assert.equal(standby, 1);
    await waiter.release();
  });

  test('metrics: a counter and a gauge of the plugin on the hub registry, named hub_plugin_<channel>_<name>', async () => {
    const sent = ctx.metrics.counter('pings_total', 'Pings sent.', ['kind']);
    sent.inc({ kind: 'short' });
    ctx.metrics.counter('pings_total', 'Pings sent.', ['kind']).inc({ kind: 'short' }, 2);
    ctx.metrics.gauge('queue_depth', 'Pings waiting.').set(7);
    const text = await ctx.hubMetrics.registry.metrics();
    assert.match(text, /^hub_plugin_tally_box_pings_total\{kind="short"\} 3$/m);
    assert.match(text, /^hub_plugin_tally_box_queue_depth 7$/m);
  });

  test('metrics: a name that is not snake_case, or a counter without _total, is refused with what to write', () => {
    assert.throws(() => ctx.metrics.counter('Pings', 'x'), { message: 'plugin tally-box: the counter name "Pings" must be lower-case snake_case ending in _total' });
    assert.throws(() => ctx.metrics.gauge('depth_total', 'x'), { message: 'plugin tally-box: the gauge name "depth_total" must be lower-case snake_case, without _total' });
  });
});
