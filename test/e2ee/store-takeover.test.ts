/**
 * The crypto store changes hands without a restart and without a dead letter:
 * a worker SIGKILLed and restarted at once (without waiting for the old one
 * to be gone) delivers to the encrypted room; a second worker
 * started while the first holds the store waits — its deliveries to
 * encrypted rooms wait with it, never dead-lettered — and takes over when the
 * first exits. The store here is made with a hex key (openssl rand -hex 32).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { eventually } from '../support/hub.ts';
import { runHub, spawnHub } from '../support/processes.ts';
import { dropPrefix, testPrefix } from '../support/redis.ts';
import { type E2ee, startE2ee } from './fixture.ts';

describe('matrix crypto store: taken over when its holder is gone', () => {
  let e: E2ee;

  before(async () => {
    e = await startE2ee('takeover', randomBytes(32).toString('hex'));
  });
  after(async () => {
    await e?.close();
  });

  test('a hex key makes a store; a worker SIGKILLed and restarted at once delivers encrypted, nothing dead-lettered', async (t) => {
    const startedAt = Date.now();
    const first = await e.startHub('hub before the kill');
    const before = await e.outcome(await e.send('before the kill'));
    t.diagnostic(`a first start to its first encrypted delivery (the store made anew): ${before.at - startedAt} ms`);
    assert.equal(before.fields.type, 'sent', before.fields.error);
    await e.assertDecrypts(before.fields.peer!, 'before the kill', [e.phone]);

    // The next process is started at once, without waiting for the killed one to be gone (or reaped).
    first.child.kill('SIGKILL');
    const restartedAt = Date.now();
    // One attempt each: a wait for the crypto counted as an attempt would be a dead letter.
    const next = spawnHub(['start'], { env: { ...e.env, HUB_MAX_ATTEMPTS: '1' }, name: 'hub restarted at once' });
    const ids = [await e.send('right after the kill 1'), await e.send('right after the kill 2'), await e.send('right after the kill 3')];
    const outcomes = [];
    for (const id of ids) outcomes.push(await e.outcome(id));
    for (const [i, outcome] of outcomes.entries()) {
      assert.equal(outcome.fields.type, 'sent', outcome.fields.error);
      await e.assertDecrypts(outcome.fields.peer!, `right after the kill ${i + 1}`, [e.phone]);
    }
    assert.equal(await e.deadLetters(), 0, 'nothing dead-lettered');
    assert.ok(!next.output.some((l) => /failed to start/.test(l)), next.output.join('\n'));
    const logged = (msg: string) => Number(next.logs.find((l) => l.msg === msg)?.time) - restartedAt;
    t.diagnostic(`restart after SIGKILL: started ${logged('started')} ms, crypto running ${logged('end-to-end encryption running')} ms, first encrypted delivery ${Math.min(...outcomes.map((o) => o.at)) - restartedAt} ms`);
    await next.kill('SIGTERM');
  });

  test('a second worker started while the first holds the store waits, its deliveries wait with it (never dead), and it takes over when the first exits', async (t) => {
    const router = await e.startHub('router', {}, ['start', '--only', 'hub']);
    // The first worker holds the store but consumes another hub's streams (another prefix): every delivery here reaches the second one.
    const otherPrefix = testPrefix('takeover-other');
    t.after(() => dropPrefix(otherPrefix));
    const holder = await e.startHub('holder', { HUB_PREFIX: otherPrefix }, ['worker', 'matrix']);
    await holder.waitFor(/end-to-end encryption running/);
    const waiter = await e.startHub('waiter', { HUB_MAX_ATTEMPTS: '1' }, ['worker', 'matrix']);
    const waitLine = await waiter.waitFor(/waiting to take it over/);
    assert.match(waitLine, new RegExp(`"pid":${holder.pid}\\b`), 'it names the holder');

    const botEvents = () => e.hs.events(e.room).filter((ev) => ev.sender === e.bot.userId && ev.type === 'm.room.encrypted').length;
    const sentBefore = botEvents();
    const ids = [await e.send('while the store is held 1'), await e.send('while the store is held 2')];
    // Each delivery is tried, refused for now with the reason, and waits: not an attempt spent, never a dead letter.
    const reason = await eventually('a delivery waiting for the store', async () => {
      const status = await runHub(['status', ids[0]!, '--json'], { env: e.env });
      return /crypto store is in use by process \d+/.test(status.stdout) && status.stdout;
    }, 60_000);
    assert.match(reason, /"state": ?"retrying"/);
    assert.match(reason, new RegExp(`in use by process ${holder.pid} on `));
    assert.equal(await e.deadLetters(), 0);
    assert.equal(botEvents(), sentBefore, 'nothing sent while it waits');

    const exitedAt = Date.now();
    await holder.kill('SIGTERM');
    await waiter.waitFor(/took over the crypto store/);
    const outcomes = [];
    for (const id of ids) outcomes.push(await e.outcome(id));
    for (const [i, outcome] of outcomes.entries()) {
      assert.equal(outcome.fields.type, 'sent', outcome.fields.error);
      await e.assertDecrypts(outcome.fields.peer!, `while the store is held ${i + 1}`, [e.phone]);
    }
    t.diagnostic(`holder's exit to the waiter's first encrypted delivery: ${Math.min(...outcomes.map((o) => o.at)) - exitedAt} ms`);
    const later = await e.outcome(await e.send('after the takeover'));
    assert.equal(later.fields.type, 'sent', later.fields.error);
    await e.assertDecrypts(later.fields.peer!, 'after the takeover', [e.phone]);
    assert.equal(await e.deadLetters(), 0, 'nothing dead-lettered');
    await waiter.kill('SIGTERM');
    await router.kill('SIGTERM');
  });
});
