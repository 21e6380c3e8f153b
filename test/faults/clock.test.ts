/**
 * A worker whose wall clock steps back an hour (NTP, an operator, a resumed
 * VM). The worker process runs with a preload (test/support/shifted-clock.ts)
 * that shifts its `Date` by −1 h on a signal, mid-run; its monotonic clock is
 * untouched, as with a real step. Then the other worker is SIGKILLed: the
 * stepped one must take over the deliveries the dead one left (after
 * `delivery.claimIdle`, 2 s here), and `hub status` — run with a correct
 * clock, and with one an hour behind — must show it alive.
 *
 * Timers, claims and heartbeats must therefore use the monotonic clock or
 * Redis's `TIME`, never the process's wall clock alone.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { LOAD, rigPerTest, until } from './rig.ts';

const SHIFTED_CLOCK = join(import.meta.dirname, '../support/shifted-clock.ts');
const rigs = rigPerTest();

describe('faults: a wall clock that steps', () => {
  test('a worker whose clock steps back an hour still takes over a dead worker\'s deliveries and shows alive in hub status', async () => {
    const r = await rigs.start({ scenario: 'clock/worker-steps-back-1h', channels: ['matrix'] });
    r.hs.delay(5);
    const rooms = Array.from({ length: 8 }, () => r.room());
    r.writeMapping(Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])));
    await r.hub();
    const stepped = await r.worker('matrix', { name: 'stepped worker', env: { NODE_OPTIONS: `--import=${SHIFTED_CLOCK}` } });
    const other = await r.worker('matrix', { name: 'other worker' });
    const events: Record<string, unknown> = {};
    await r.produce({
      count: LOAD,
      perSecond: 250,
      groupOf: (seq) => `#g${seq % 4}`,
      during: async (sent) => {
        await until('load', () => sent() >= LOAD * 0.2, 30_000);
        stepped.child.kill('SIGUSR2');
        await stepped.waitFor(/wall clock stepped/);
        events.steppedAt = sent();
        await until('load', () => sent() >= LOAD * 0.4, 30_000);
        await other.kill('SIGKILL');
        events.otherKilledAt = sent();
      },
    });
    r.notes.clock = events;
    const figures = await r.settle(60_000);
    r.report(figures);

    // The dead worker's last beat ages out; the stepped one must stay alive, whoever reads the status with what clock.
    const workers = async (env: Record<string, string>) => {
      const { code, stdout } = await r.runWith(env, 'status', '--json');
      assert.equal(code, 0, stdout);
      const lines = stdout.split('\n');
      const status = JSON.parse(lines.slice(lines.indexOf('{')).join('\n')) as { channels: Array<{ channel: string; workers: number }> };
      return status.channels.find((c) => c.channel === 'matrix')?.workers;
    };
    await until('hub status to show the stepped worker, and it alone, alive', async () => (await workers({})) === 1, 60_000);
    assert.equal(await workers({ NODE_OPTIONS: `--import=${SHIFTED_CLOCK}`, CLOCK_OFFSET_MS: '-3600000' }), 1, 'hub status with a clock an hour behind');
    assert.equal(await workers({ NODE_OPTIONS: `--import=${SHIFTED_CLOCK}`, CLOCK_OFFSET_MS: '3600000' }), 1, 'hub status with a clock an hour ahead');
    assert.ok(stepped.running, 'the stepped worker still runs');
  });
});
