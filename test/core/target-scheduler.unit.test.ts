import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { TargetScheduler } from '../../core/runtime/target-scheduler.ts';

interface Job {
  target: string;
  name: string;
  gate: Gate;
}

interface Gate {
  promise: Promise<void>;
  open(): void;
  fail(err: Error): void;
}

function gate(): Gate {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/** A scheduler whose jobs wait for their gate; it records what started, what finished, and the most running at once. */
function harness(concurrency: number, capacity = 1000) {
  const started: string[] = [];
  const finished: string[] = [];
  const running = new Set<string>();
  const runningTargets: string[] = [];
  let peak = 0;
  const overlaps: string[] = [];
  const scheduler = new TargetScheduler<Job>({
    concurrency,
    capacity,
    run: async (job) => {
      if (runningTargets.includes(job.target)) overlaps.push(`${job.name} while ${job.target} was busy`);
      runningTargets.push(job.target);
      running.add(job.name);
      started.push(job.name);
      peak = Math.max(peak, running.size);
      try {
        await job.gate.promise;
      } finally {
        running.delete(job.name);
        runningTargets.splice(runningTargets.indexOf(job.target), 1);
        finished.push(job.name);
      }
    },
  });
  const jobs = new Map<string, Job>();
  const push = (target: string, name: string) => {
    const job = { target, name, gate: gate() };
    jobs.set(name, job);
    scheduler.push(target, job);
    return job;
  };
  const open = async (name: string) => {
    jobs.get(name)!.gate.open();
    await settle();
  };
  return { scheduler, started, finished, running, overlaps, push, open, jobs, peak: () => peak };
}

/** Let every promise chain that can move, move. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await tick();
}

describe('TargetScheduler: per-target order', () => {
  test('jobs of one target run one at a time, in the order they were pushed', async () => {
    const h = harness(8);
    for (let i = 1; i <= 5; i += 1) h.push('!room:hs', `A${i}`);
    await settle();
    assert.deepEqual(h.started, ['A1'], 'only the first job of a target runs');
    for (let i = 1; i <= 5; i += 1) await h.open(`A${i}`);
    assert.deepEqual(h.finished, ['A1', 'A2', 'A3', 'A4', 'A5']);
    assert.deepEqual(h.overlaps, []);
  });

  test('a job pushed while its target is busy waits for it, also after the target went idle once', async () => {
    const h = harness(4);
    h.push('t', 'first');
    await h.open('first');
    h.push('t', 'second');
    h.push('t', 'third');
    await settle();
    assert.deepEqual(h.started, ['first', 'second']);
    await h.open('third');
    assert.deepEqual(h.started, ['first', 'second'], 'third does not overtake second');
    await h.open('second');
    assert.deepEqual(h.finished, ['first', 'second', 'third']);
  });

  test('many targets with random durations: each target keeps its order, none runs two at once, the limit holds', async () => {
    const order = new Map<string, number[]>();
    let active = 0;
    let peak = 0;
    const busy = new Set<string>();
    const overlaps: string[] = [];
    const scheduler = new TargetScheduler<{ target: string; seq: number }>({
      concurrency: 5,
      capacity: 10_000,
      run: async ({ target, seq }) => {
        if (busy.has(target)) overlaps.push(target);
        busy.add(target);
        active += 1;
        peak = Math.max(peak, active);
        await sleep(Math.floor(Math.random() * 3));
        order.set(target, [...(order.get(target) ?? []), seq]);
        active -= 1;
        busy.delete(target);
      },
    });
    const pushed = new Map<string, number[]>();
    for (let i = 0; i < 400; i += 1) {
      const target = `target-${Math.floor(Math.random() * 12)}`;
      pushed.set(target, [...(pushed.get(target) ?? []), i]);
      scheduler.push(target, { target, seq: i });
      if (i % 50 === 0) await sleep(1);
    }
    await scheduler.drained();
    assert.deepEqual(overlaps, []);
    assert.ok(peak <= 5, `at most 5 at once, saw ${peak}`);
    assert.equal(peak, 5, 'with 12 busy targets the limit is reached');
    for (const [target, seqs] of pushed) assert.deepEqual(order.get(target), seqs, `order of ${target}`);
    assert.equal(scheduler.buffered, 0);
  });
});

describe('TargetScheduler: different targets in parallel, up to the concurrency', () => {
  test('with concurrency 3, five targets: three run, the next starts when one finishes', async () => {
    const h = harness(3);
    for (const t of ['a', 'b', 'c', 'd', 'e']) h.push(t, t);
    await settle();
    assert.deepEqual(h.started, ['a', 'b', 'c']);
    await h.open('b');
    assert.deepEqual(h.started, ['a', 'b', 'c', 'd']);
    assert.equal(h.running.size, 3);
    await h.open('a');
    await h.open('c');
    await h.open('d');
    await h.open('e');
    assert.equal(h.peak(), 3);
    assert.deepEqual(h.finished, ['b', 'a', 'c', 'd', 'e']);
  });

  test('a slow target does not hold up the others', async () => {
    const h = harness(2);
    h.push('slow', 'slow-1');
    h.push('slow', 'slow-2');
    h.push('fast', 'fast-1');
    h.push('fast', 'fast-2');
    h.push('fast', 'fast-3');
    await settle();
    await h.open('fast-1');
    await h.open('fast-2');
    await h.open('fast-3');
    assert.deepEqual(h.finished, ['fast-1', 'fast-2', 'fast-3']);
    assert.deepEqual([...h.running], ['slow-1']);
    await h.open('slow-1');
    await h.open('slow-2');
    assert.equal(h.scheduler.buffered, 0);
  });
});

describe('TargetScheduler: fairness', () => {
  test('with one slot, a target that arrives while another has a backlog runs next, not after the backlog', async () => {
    const h = harness(1);
    for (let i = 1; i <= 4; i += 1) h.push('busy', `busy-${i}`);
    await settle();
    h.push('other', 'other-1');
    await h.open('busy-1');
    assert.deepEqual(h.started, ['busy-1', 'other-1']);
    for (const name of ['other-1', 'busy-2', 'busy-3', 'busy-4']) await h.open(name);
    assert.deepEqual(h.finished, ['busy-1', 'other-1', 'busy-2', 'busy-3', 'busy-4']);
  });

  test('with one slot, three targets with backlogs take turns', async () => {
    const h = harness(1);
    for (const t of ['a', 'b', 'c']) for (let i = 1; i <= 3; i += 1) h.push(t, `${t}${i}`);
    const expected = ['a1', 'b1', 'c1', 'a2', 'b2', 'c2', 'a3', 'b3', 'c3'];
    for (const name of expected) {
      await settle();
      assert.deepEqual([...h.running], [name]);
      await h.open(name);
    }
    assert.deepEqual(h.finished, expected);
  });
});

describe('TargetScheduler: capacity backpressure', () => {
  test('hasRoom waits while capacity jobs are buffered, and resolves once one finishes', async () => {
    const h = harness(2, 4);
    for (const t of ['a', 'b', 'c', 'd']) h.push(t, t);
    assert.equal(h.scheduler.buffered, 4);
    let room = false;
    const waiting = h.scheduler.hasRoom().then(() => (room = true));
    await settle();
    assert.equal(room, false, 'no room with 4 of 4 buffered');
    await h.open('a');
    await waiting;
    assert.equal(room, true);
    assert.equal(h.scheduler.buffered, 3);
    for (const t of ['b', 'c', 'd']) await h.open(t);
  });

  test('queued jobs of one target count toward the capacity', async () => {
    const h = harness(4, 3);
    for (let i = 1; i <= 3; i += 1) h.push('one', `one-${i}`);
    let room = false;
    void h.scheduler.hasRoom().then(() => (room = true));
    await settle();
    assert.equal(room, false);
    await h.open('one-1');
    assert.equal(room, true);
    await h.open('one-2');
    await h.open('one-3');
  });

  test('hasRoom resolves at once below the capacity', async () => {
    const h = harness(1, 2);
    h.push('a', 'a');
    await h.scheduler.hasRoom();
    await h.open('a');
  });
});

describe('TargetScheduler: drained and jobs()', () => {
  test('drained resolves at once when nothing is buffered', async () => {
    const scheduler = new TargetScheduler<string>({ concurrency: 1, capacity: 1, run: async () => {} });
    await scheduler.drained();
    assert.equal(scheduler.buffered, 0);
  });

  test('drained waits for every accepted job, queued ones included', async () => {
    const h = harness(1);
    h.push('a', 'a1');
    h.push('a', 'a2');
    h.push('b', 'b1');
    let drained = false;
    const done = h.scheduler.drained().then(() => (drained = true));
    await h.open('a1');
    await h.open('b1');
    assert.equal(drained, false);
    await h.open('a2');
    await done;
    assert.equal(drained, true);
  });

  test('jobs() lists what is accepted and not finished, the running ones included', async () => {
    const h = harness(1);
    h.push('a', 'a1');
    h.push('a', 'a2');
    h.push('b', 'b1');
    await settle();
    assert.deepEqual([...h.scheduler.jobs()].map((j) => j.name).sort(), ['a1', 'a2', 'b1']);
    await h.open('a1');
    assert.deepEqual([...h.scheduler.jobs()].map((j) => j.name).sort(), ['a2', 'b1']);
    await h.open('b1');
    await h.open('a2');
    assert.deepEqual([...h.scheduler.jobs()], []);
  });
});

describe('fixed bugs stay fixed (target scheduler)', () => {
  test('a job that throws does not stop its target: the next job of that target still runs, and nothing is left buffered', async () => {
    const h = harness(1);
    h.push('t', 't1');
    h.push('t', 't2');
    await settle();
    h.jobs.get('t1')!.gate.fail(new Error('a bug in run'));
    await settle();
    assert.deepEqual(h.started, ['t1', 't2']);
    await h.open('t2');
    assert.equal(h.scheduler.buffered, 0);
  });
});

describe('TargetScheduler: a job yields to another job of its target', () => {
  test('the job yielded to runs next, wherever it was queued, and the yielding job runs again after it', async () => {
    const ran: string[] = [];
    let yielded = false;
    const scheduler = new TargetScheduler<string>({
      concurrency: 1,
      capacity: 100,
      order: (a, b) => a.localeCompare(b),
      run: async (job) => {
        ran.push(job);
        if (job === 'a' && !yielded) {
          yielded = true;
          return { yieldTo: 'c' };
        }
      },
    });
    for (const job of ['a', 'b', 'c', 'd']) scheduler.push('t', job);
    await scheduler.drained();
    assert.deepEqual(ran, ['a', 'c', 'a', 'b', 'd']);
    assert.equal(scheduler.buffered, 0);
  });

  test('two jobs queued here in the opposite order of the list that orders their target do not wait for each other: the list decides', async () => {
    // The target's order list (as Redis holds it): whoever heads it may go. It says b before a, the queue here says a before b.
    const list = ['b', 'a'];
    const made: string[] = [];
    const queued = new Set(['a', 'b']);
    const scheduler = new TargetScheduler<string>({
      concurrency: 4,
      capacity: 100,
      order: (x, y) => x.localeCompare(y),
      run: async (job) => {
        for (;;) {
          if (list[0] === job) {
            made.push(list.shift()!);
            queued.delete(job);
            return;
          }
          // The head is held here: it runs first (what the worker does), instead of waiting for it.
          if (queued.has(list[0]!)) return { yieldTo: list[0]! };
          await sleep(1);
        }
      },
    });
    scheduler.push('t', 'a');
    scheduler.push('t', 'b');
    const deadline = new AbortController();
    const done = await Promise.race([scheduler.drained().then(() => 'drained'), sleep(10_000, 'stuck', { signal: deadline.signal }).catch(() => 'cancelled')]);
    deadline.abort();
    assert.equal(done, 'drained', `made ${JSON.stringify(made)}`);
    assert.deepEqual(made, ['b', 'a']);
  });

  test('yielding to a job that is not queued behind it runs the same job again', async () => {
    let runs = 0;
    const scheduler = new TargetScheduler<string>({
      concurrency: 1,
      capacity: 100,
      run: async () => {
        runs += 1;
        if (runs < 3) return { yieldTo: 'elsewhere' };
      },
    });
    scheduler.push('t', 'only');
    await scheduler.drained();
    assert.equal(runs, 3);
  });
});
