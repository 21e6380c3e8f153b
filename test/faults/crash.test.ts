/**
 * Crashes: the hub SIGKILLed in the middle of fan-out, a matrix worker
 * SIGKILLed in the middle of deliveries, both at once; new processes started
 * in their place. Every message arrives, and Matrix shows no duplicate (the
 * resends that a crash causes are absorbed by transaction ids, and counted).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HubProcess } from '../support/processes.ts';
import { LOAD, type Rig, rigPerTest, until } from './rig.ts';
import { fromPairs } from '../../core/redis/fields.ts';

const rigs = rigPerTest();

/** Eight rooms in four groups of two: each message makes two deliveries. */
async function matrixRig(scenario: string): Promise<Rig> {
  const r = await rigs.start({ scenario, channels: ['matrix'] });
  const rooms = Array.from({ length: 8 }, () => r.room());
  r.writeMapping(Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { matrix: rooms.slice(g * 2, g * 2 + 2) }])));
  return r;
}

const groupOf = (seq: number) => `#g${seq % 4}`;

async function pendingAt(r: Rig, stream: string, group: string): Promise<number> {
  const reply = (await r.redis.xpending(`${r.prefix}:${stream}`, group).catch(() => [0])) as [number];
  return Number(reply[0] ?? 0);
}

/** Requests the homeserver has not answered yet: deliveries in flight. */
const inFlight = (r: Rig) => r.hs.requests().filter((q) => q.status === 0 && q.method === 'PUT').length;

describe('faults: crashes', () => {
  test('SIGKILL the hub in the middle of fan-out, three times; a new hub takes over', async () => {
    const r = await matrixRig('crash/hub');
    let hub = await r.hub('hub 1');
    await r.worker('matrix');
    const kills: Array<{ at: number; pendingAtThisHub: number }> = [];
    await r.produce({
      count: LOAD,
      perSecond: 250,
      groupOf,
      during: async (sent) => {
        for (const fraction of [0.15, 0.4, 0.65]) {
          await until('load', () => sent() >= LOAD * fraction);
          // Kill while this hub holds entries it has read and not yet fanned out (or within 3 s anyway).
          const pending = await midFanOut(r, hub, 3_000);
          await hub.kill('SIGKILL');
          kills.push({ at: sent(), pendingAtThisHub: pending });
          hub = await r.hub(`hub ${kills.length + 1}`);
        }
      },
    });
    r.notes.hubKills = kills;
    const figures = await r.settle();
    r.notes.routedTwice = await routedTwice(r);
    r.report(figures);
  });

  test('SIGKILL a matrix worker in the middle of deliveries, three times; the other worker and a new one take over', async () => {
    const r = await matrixRig('crash/worker');
    r.hs.delay(15); // every answer takes a while: there are always deliveries in flight to kill
    await r.hub();
    let victim = await r.worker('matrix', { name: 'worker A1' });
    await r.worker('matrix', { name: 'worker B' });
    const kills: Array<{ at: number; inFlight: number }> = [];
    await r.produce({
      count: LOAD,
      perSecond: 300,
      groupOf,
      during: async (sent) => {
        for (const fraction of [0.2, 0.45, 0.7]) {
          await until('load', () => sent() >= LOAD * fraction);
          await until('deliveries in flight', () => inFlight(r) > 0);
          const n = inFlight(r);
          await victim.kill('SIGKILL');
          kills.push({ at: sent(), inFlight: n });
          await sleep(200);
          victim = await r.worker('matrix', { name: `worker A${kills.length + 1}` });
        }
      },
    });
    r.notes.workerKills = kills;
    const figures = await r.settle();
    r.report(figures);
  });

  test('SIGKILL the hub and every worker at once, twice; start them again', async () => {
    const r = await matrixRig('crash/both');
    r.hs.delay(10);
    let procs = [await r.hub('hub'), await r.worker('matrix')];
    const kills: Array<{ at: number; pendingIngress: number; inFlight: number }> = [];
    await r.produce({
      count: LOAD,
      perSecond: 300,
      groupOf,
      during: async (sent) => {
        for (const fraction of [0.3, 0.65]) {
          await until('load', () => sent() >= LOAD * fraction);
          await until('deliveries in flight', () => inFlight(r) > 0);
          const kill = { at: sent(), pendingIngress: await pendingAt(r, 'in', 'hub'), inFlight: inFlight(r) };
          await Promise.all(procs.map((p) => p.kill('SIGKILL')));
          kills.push(kill);
          await sleep(500);
          procs = await Promise.all([r.hub(`hub ${kills.length + 1}`), r.worker('matrix', { name: `worker ${kills.length + 1}` })]);
        }
      },
    });
    r.notes.kills = kills;
    const figures = await r.settle();
    r.notes.routedTwice = await routedTwice(r);
    r.report(figures);
  });

  test('rolling restart with SIGTERM under load: hub and workers stop in time, their replacements lose nothing', async () => {
    const r = await matrixRig('crash/rolling-sigterm');
    r.hs.delay(15);
    let hub = await r.hub('hub 1');
    let workers: HubProcess[] = await Promise.all([r.worker('matrix', { name: 'worker A1' }), r.worker('matrix', { name: 'worker B1' })]);
    const stops: Array<{ process: string; inFlight: number; exitMs: number; exit: string }> = [];
    const replace = async (old: HubProcess, start: () => Promise<HubProcess>) => {
      const n = inFlight(r);
      const begun = performance.now();
      const next = start();
      old.child.kill('SIGTERM');
      // It stops by itself (a process that hangs on SIGTERM fails here, with a generous deadline), having finished what it had in flight.
      const timeout = sleep(60_000, undefined, { ref: false }).then(() => assert.fail(`${old.name} did not stop within a minute of SIGTERM`));
      const { code, signal } = await Promise.race([old.exited, timeout]);
      stops.push({ process: old.name.split(' ').slice(1).join(' '), inFlight: n, exitMs: Math.round(performance.now() - begun), exit: String(signal ?? code) });
      return next;
    };
    await r.produce({
      count: LOAD,
      perSecond: 300,
      groupOf,
      during: async (sent) => {
        for (const [i, fraction] of [0.2, 0.45, 0.7].entries()) {
          await until('load', () => sent() >= LOAD * fraction);
          hub = await replace(hub, () => r.hub(`hub ${i + 2}`));
          workers = await Promise.all(workers.map((w, k) => replace(w, () => r.worker('matrix', { name: `worker ${'AB'[k]}${i + 2}` }))));
        }
      },
    });
    r.notes.stops = stops;
    const figures = await r.settle();
    r.report(figures);
    for (const stop of stops) assert.equal(stop.exit, '0', `${stop.process} stopped with ${stop.exit} after ${stop.exitMs} ms`);
  });

  test('SIGKILL the email and Slack workers in the middle of deliveries: no idempotency key there, so duplicates are counted', async () => {
    const r = await rigs.start({ scenario: 'crash/email+slack', channels: ['email', 'slack'] });
    const slackTargets = ['C024BE91L', 'C0OPS00001', 'G0PRIVATE1', 'U0WILL0001'];
    r.writeMapping(Object.fromEntries([0, 1, 2, 3].map((g) => [`#g${g}`, { email: [`person${g}@example.org`], slack: [slackTargets[g]!] }])));
    await r.hub();
    let workers = await Promise.all([r.worker('email', { name: 'email worker 1' }), r.worker('slack', { name: 'slack worker 1' })]);
    const kills: number[] = [];
    const count = Math.round(LOAD * 0.66);
    await r.produce({
      count,
      perSecond: 250,
      groupOf,
      during: async (sent) => {
        for (const fraction of [0.3, 0.65]) {
          await until('load', () => sent() >= count * fraction);
          await Promise.all(workers.map((w) => w.kill('SIGKILL')));
          kills.push(sent());
          workers = await Promise.all([r.worker('email', { name: `email worker ${kills.length + 1}` }), r.worker('slack', { name: `slack worker ${kills.length + 1}` })]);
        }
      },
    });
    r.notes.killsAt = kills;
    const figures = await r.settle();
    // An email sent twice keeps its Message-ID, so that mail clients fold the copies.
    const ids = new Map<string, Set<string>>();
    for (const mail of r.smtp!.messages) {
      const key = `${mail.envelope.to.join(',')} ${mail.parsed.subject}`;
      ids.set(key, (ids.get(key) ?? new Set()).add(mail.parsed.messageId ?? ''));
    }
    r.notes.emailCopiesWithAnotherMessageId = [...ids.values()].filter((set) => set.size > 1).length;
    r.report(figures, { duplicates: 'counted' });
    assert.equal(r.notes.emailCopiesWithAnotherMessageId, 0, 'a resent email keeps its Message-ID');
  });
});

/** Wait (polling Redis as fast as it answers) until `hub` has read entries it has not acknowledged; resolves with how many. */
async function midFanOut(r: Rig, hub: HubProcess, timeoutMs: number): Promise<number> {
  const line = await hub.waitFor(/"msg":"hub consuming"/);
  const consumer = String((JSON.parse(line) as { consumer: string }).consumer);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reply = (await r.redis.xpending(`${r.prefix}:in`, 'hub')) as [number, string | null, string | null, Array<[string, string]> | null];
    const mine = Number(reply[3]?.find(([name]) => name === consumer)?.[1] ?? 0);
    if (mine > 0) return mine;
  }
  return 0;
}

/** Ingress entries fanned out more than once (the route script must refuse a second time). */
async function routedTwice(r: Rig): Promise<number> {
  const events = (await r.redis.xrange(`${r.prefix}:events`, '-', '+')) as Array<[string, string[]]>;
  const routed = new Map<string, number>();
  for (const [, flat] of events) {
    const f = fromPairs(flat);
    if (f.type === 'routed') routed.set(f.entry!, (routed.get(f.entry!) ?? 0) + 1);
  }
  return [...routed.values()].filter((n) => n > 1).length;
}
