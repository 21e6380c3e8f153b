/**
 * The fault suite's rig: one scenario's hub, as separate processes against a
 * Redis under a key prefix of its own, the protocol peers it delivers to (the
 * fake homeserver, a real SMTP server, the Slack Web API server), a producer
 * at a steady rate, and the figures: every message carries a sequence number
 * in its body, and the peers are counted by (target, sequence number).
 *
 *     sent N      deliveries, (message, target), of the messages Redis acknowledged to the producer,
 *                 plus each entry of bad input (which must end in the dead-letter stream)
 *     delivered   distinct (target, message) pairs that reached their peer
 *     duplicates  deliveries the peer received more than once (events − distinct)
 *     dead        distinct (target, message) pairs, and bad entries, in the dead-letter stream, with the reasons
 *     lost        pairs neither delivered nor dead-lettered, bad entries not dead-lettered: must be 0
 *     inversions  per target, over the first arrival of each message at its peer: the pairs of messages
 *                 where the one earlier in `notify:in` arrived after the later one, summed over the targets
 *                 (a message overtaken by k later ones counts k). `notify:in` order is the order the README
 *                 promises per target: that of the entry ids of the copies the hub routed (the id XADD
 *                 answered; for a resend the hub folded as a duplicate, the first copy's). It is the order
 *                 of the sequence numbers, except where the producer's client sent again out of order
 *                 after a cut connection. Must be 0 unless a scenario says why
 *     longest pause  the longest stretch of time in which at least one pair was outstanding (XADDed, not
 *                 yet delivered nor dead-lettered) and none completed (arrived at its peer for the first
 *                 time, or was dead-lettered): from the later of the previous completion and the XADD of the
 *                 oldest pair then outstanding, to the next completion. Times: the entry id (Redis's clock)
 *                 for the XADD, the peer's own clock for an arrival, the dead letter's id for a dead letter
 *                 (one machine, one clock); a pair never completed counts until the figures are taken
 *                 (but not one an operator destroyed: `DEL` of a delivery stream, see `destroyed`)
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { SLACK_TEST_TOKEN, type SlackTestServer, startSlackServer } from '../servers/slack/server.ts';
import { type TestSmtpServer, startSmtpServer } from '../servers/smtp.ts';
import { type HubProcess, REPO_ROOT, killAll, runHub, spawnHub } from '../support/processes.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';
import { fromPairs } from '../../core/redis/fields.ts';
import { compareEntryIds } from '../../core/runtime/worker.ts';

export const RESULTS_FILE = join(import.meta.dirname, 'results', 'figures.jsonl');

/** Messages per scenario: a steady load that keeps the suite within a few minutes in CI. `FAULT_MESSAGES` raises it. */
export const LOAD = Number(process.env.FAULT_MESSAGES ?? 1500);

export type Channel = 'matrix' | 'email' | 'slack';
export type Group = Partial<Record<Channel, string[]>>;

export interface RigOptions {
  /** The scenario, as printed: `crash/hub`. */
  scenario: string;
  /** Channels whose peers to start. */
  channels: Channel[];
  /** Another Redis than the machine's (a private one the test kills). */
  redisUrl?: string;
  /** `delivery.*` of the config file the processes read (durations as strings or ms). */
  delivery?: Record<string, string | number>;
  /** Extra environment of every process. */
  env?: Record<string, string>;
}

export interface Figures {
  scenario: string;
  messages: number;
  /** Entries of bad input among the messages: each counts once in `sent`, and must be dead-lettered. */
  bad: number;
  sent: number;
  delivered: number;
  duplicates: number;
  dead: number;
  reasons: Record<string, number>;
  lost: number;
  /** Pairs of messages that reached one target in the wrong order (see the header). */
  inversions: number;
  /** The longest stretch with something outstanding and nothing completing (see the header), in ms. */
  longestPauseMs: number;
  /** Delivered pairs that were dead-lettered too (a peer that accepted what the hub gave up on). */
  deliveredAndDead: number;
  /** Deliveries of messages to targets their groups do not have. */
  unexpected: number;
  seconds: number;
  notes: Record<string, unknown>;
}

interface Sent {
  seq: number;
  /** When Redis took it (the ms part of the entry id). */
  at: number;
  /** The entry id XADD answered. */
  id: string;
  groups: string[];
  /** `channel target` of every target the mapping gave the groups at send time. */
  targets: string[];
  /** Bad input: why the hub must dead-letter it at ingress (the good part, if any, is still delivered). */
  bad?: string;
}

/** An entry of the producer's own making (bad input): its fields, the targets it still reaches, and why it must be dead-lettered. */
export interface CustomEntry {
  fields: Record<string, string>;
  /** Groups whose targets it is still delivered to (default none). */
  deliveredTo?: string[];
  /** The kind of bad input, for the figures; undefined: a good entry. */
  bad?: string;
}

export class Rig {
  readonly scenario: string;
  readonly prefix: string;
  readonly dir: string;
  readonly redisUrl: string;
  readonly redis: Redis;
  readonly producer: Redis;
  hs!: Homeserver;
  bot!: { userId: string; accessToken: string; deviceId: string };
  smtp: TestSmtpServer | undefined;
  slack: SlackTestServer | undefined;
  mapping: Record<string, Group> = {};
  readonly processes: HubProcess[] = [];
  readonly notes: Record<string, unknown> = {};
  readonly sent = new Map<number, Sent>();
  #options: RigOptions;
  #started = Date.now();
  #seq = 0;
  #inFlightXadds = 0;

  private constructor(options: RigOptions) {
    this.#options = options;
    this.scenario = options.scenario;
    this.prefix = testPrefix(`fault-${options.scenario.replace(/[^a-z0-9]+/gi, '-')}`);
    this.dir = mkdtempSync(join(tmpdir(), 'hub-fault-'));
    this.redisUrl = options.redisUrl ?? REDIS_URL;
    // Both wait through a Redis restart, as a long-running producer does.
    this.redis = new Redis(this.redisUrl, { maxRetriesPerRequest: null });
    this.producer = new Redis(this.redisUrl, { maxRetriesPerRequest: null });
    this.redis.on('error', () => {});
    this.producer.on('error', () => {});
  }

  static async start(options: RigOptions): Promise<Rig> {
    const rig = new Rig(options);
    try {
      rig.hs = await startHomeserver();
      rig.bot = rig.hs.registerUser('bot');
      rig.hs.registerUser('owner');
      if (options.channels.includes('email')) rig.smtp = await startSmtpServer();
      if (options.channels.includes('slack')) rig.slack = await startSlackServer();
      rig.#writeConfig();
      return rig;
    } catch (err) {
      await rig.close();
      throw err;
    }
  }

  /** A room the bot is in (or, with `joined: false`, one it is not invited to: a poison target). */
  room(options: { joined?: boolean } = {}): string {
    return this.hs.createRoom(`@owner:${this.hs.serverName}`, { members: options.joined === false ? [] : [this.bot.userId] });
  }

  /** The mapping the next messages are counted against (when the test writes it elsewhere, e.g. to CouchDB). */
  expect(mapping: Record<string, Group>): void {
    this.mapping = mapping;
  }

  /** Write the mapping file (the processes follow it live). */
  writeMapping(mapping: Record<string, Group>): void {
    this.mapping = mapping;
    writeFileSync(join(this.dir, 'mapping.json'), JSON.stringify({ _id: 'ccs.notifications', mapping }));
  }

  #writeConfig(): void {
    const channels = this.#options.channels;
    const config = {
      plugins: { dirs: [], modules: channels.map((c) => join(REPO_ROOT, 'plugins', c, 'index.ts')) },
      ingress: { blockMs: 100 },
      // Short, for quick takeovers, yet not so short that a process starved for a few seconds on a loaded machine
      // (two suites and more on 2 cores) loses its deliveries to another worker: with claimIdle 2 s (claims refreshed
      // every second) and a 2 s timeout, workers took each other's deliveries over and over, and timed out on a
      // homeserver that was merely slow to answer.
      delivery: { claimIdle: '10s', backoffBase: 50, backoffMax: 500, timeout: '5s', ...this.#options.delivery },
      channels: this.smtp ? { email: { tlsCa: this.smtp.ca } } : {},
    };
    // HUB_CONFIG is loaded with import(): plain data, no imports.
    writeFileSync(join(this.dir, 'hub.config.mjs'), `export default ${JSON.stringify(config, null, 2)};\n`);
  }

  /** The environment of every hub process of this scenario. */
  get env(): Record<string, string> {
    return {
      REDIS_URL: this.redisUrl,
      HUB_PREFIX: this.prefix,
      HUB_CONFIG: join(this.dir, 'hub.config.mjs'),
      MAPPING_FILE: join(this.dir, 'mapping.json'),
      HUB_HTTP_PORT: '0',
      HUB_HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      MATRIX_HOMESERVER: this.hs.url,
      MATRIX_USER_ID: this.bot.userId,
      MATRIX_ACCESS_TOKEN: this.bot.accessToken,
      MATRIX_DEVICE_ID: this.bot.deviceId,
      ...(this.smtp ? { SMTP_URL: this.smtp.url(), EMAIL_FROM: 'Hub <hub@example.org>' } : {}),
      ...(this.slack ? { SLACK_TOKEN: SLACK_TEST_TOKEN, SLACK_API_URL: this.slack.url } : {}),
      ...this.#options.env,
      ...this.extraEnv,
    };
  }

  /** Set by a test after the peers started (a proxy in front of one): overrides the environment of the processes spawned next. */
  readonly extraEnv: Record<string, string> = {};

  /** `hub start --only hub`, resolved once it consumes. */
  async hub(name = 'hub'): Promise<HubProcess> {
    const p = spawnHub(['start', '--only', 'hub'], { env: this.env, name: `${this.scenario} ${name}` });
    this.processes.push(p);
    await p.waitFor(/"msg":"started"/);
    return p;
  }

  /** `hub worker <channel> [--concurrency n]`, resolved once it consumes. */
  async worker(channel: Channel, options: { concurrency?: number; name?: string; env?: Record<string, string> } = {}): Promise<HubProcess> {
    const args = ['worker', channel, ...(options.concurrency ? ['--concurrency', String(options.concurrency)] : [])];
    const p = spawnHub(args, { env: { ...this.env, ...options.env }, name: `${this.scenario} ${options.name ?? `${channel} worker`}` });
    this.processes.push(p);
    await p.waitFor(/"msg":"started"/);
    return p;
  }

  /** A one-shot command (`dead replay --all`), given two minutes: on a loaded machine a process alone can take half a minute to start. */
  async run(...args: string[]): Promise<{ code: number | null; stdout: string }> {
    return this.runWith({}, ...args);
  }

  /** A one-shot command with more environment (`NODE_OPTIONS` of a faked clock). */
  async runWith(env: Record<string, string>, ...args: string[]): Promise<{ code: number | null; stdout: string }> {
    return runHub(args, { env: { ...this.env, LOG_LEVEL: 'warn', ...env }, timeoutMs: 120_000 });
  }

  /**
   * Deliveries an operator destroyed (`DEL` of a delivery stream), as
   * `channel target seq`: neither expected nor lost, counted apart (and as
   * delivered if a worker still made one it held).
   */
  readonly destroyed = new Set<string>();

  /**
   * XADD `count` messages at `perSecond`, each to `groupOf(seq)`, with the
   * sequence number in its body. Counted as sent once Redis acknowledged the XADD.
   * `during` runs meanwhile (the fault), with the number acknowledged so far.
   */
  async produce(options: {
    count: number;
    perSecond: number;
    /** The group(s) of message `seq` (1, 2, …). */
    groupOf: (seq: number) => string;
    producerIds?: boolean;
    /** An entry of the test's own making for message `seq` (bad input), or undefined for the usual one. */
    entryOf?: (seq: number) => CustomEntry | undefined;
    during?: (progress: () => number) => Promise<void>;
  }): Promise<void> {
    const { count, perSecond } = options;
    const tick = 20;
    const perTick = Math.max(1, Math.round((perSecond * tick) / 1000));
    const pending: Promise<unknown>[] = [];
    const produced = (async () => {
      const start = Date.now();
      for (let i = 0; i < count; i += perTick) {
        for (let j = i; j < Math.min(count, i + perTick); j++) {
          const seq = ++this.#seq;
          const custom = options.entryOf?.(seq);
          pending.push(custom ? this.#sendCustom(seq, custom) : this.#send(seq, options.groupOf(seq), options.producerIds ?? false));
        }
        const due = start + ((i + perTick) / perSecond) * 1000;
        await sleep(Math.max(0, due - Date.now()));
      }
      await Promise.all(pending);
    })();
    await Promise.all([produced, options.during?.(() => this.sent.size)]);
  }

  #targetsOf(groups: string[]): string[] {
    return [...new Set(groups.flatMap((g) => Object.entries(this.mapping[g] ?? {}).flatMap(([ch, list]) => list.map((t) => `${ch} ${t}`))))];
  }

  async #send(seq: number, group: string, producerId: boolean): Promise<void> {
    const groups = group.split(',');
    const fields = ['to', group, 'format', 'text', 'subject', `seq=${seq}`, 'body', `${this.scenario} seq=${seq} ·`];
    if (producerId) fields.push('id', `${this.prefix}-${seq}`);
    await this.#xadd(fields, { seq, groups, targets: this.#targetsOf(groups) });
  }

  async #sendCustom(seq: number, entry: CustomEntry): Promise<void> {
    const groups = entry.deliveredTo ?? [];
    await this.#xadd(Object.entries(entry.fields).flat(), { seq, groups, targets: this.#targetsOf(groups), ...(entry.bad ? { bad: entry.bad } : {}) });
  }

  async #xadd(fields: string[], sent: Omit<Sent, 'at' | 'id'>): Promise<void> {
    this.#inFlightXadds += 1;
    try {
      const id = (await this.producer.xadd(`${this.prefix}:in`, '*', ...fields)) as string;
      this.sent.set(sent.seq, { ...sent, id, at: Number(id.split('-')[0]) });
    } catch (err) {
      // Redis out of memory refuses the XADD: the producer knows it was not taken, so it is not counted as sent.
      if (!(err as Error).message.startsWith('OOM')) throw err;
      this.notes.refusedByRedis = Number(this.notes.refusedByRedis ?? 0) + 1;
    } finally {
      this.#inFlightXadds -= 1;
    }
  }

  /** Deliveries that arrived after a later message to the same target (first arrivals only), by channel. */
  outOfOrder: Record<string, number> = {};

  /** Per `channel target`: the first arrival of each message, in the order they arrived (sequence number, ms). */
  arrivals = new Map<string, Array<{ seq: number; at: number }>>();

  /** Every delivery the peers received, as `channel target` → sequence number → times. */
  observed(): Map<string, Map<number, number>> {
    const seen = new Map<string, Map<number, number>>();
    const highest = new Map<string, number>();
    this.outOfOrder = {};
    this.arrivals = new Map();
    const add = (key: string, text: string | undefined, at: number) => {
      const m = /seq=(\d+)/.exec(text ?? '');
      if (!m) return;
      const seq = Number(m[1]);
      let bySeq = seen.get(key);
      if (!bySeq) seen.set(key, (bySeq = new Map()));
      const times = (bySeq.get(seq) ?? 0) + 1;
      bySeq.set(seq, times);
      if (times === 1) {
        if (!this.arrivals.has(key)) this.arrivals.set(key, []);
        this.arrivals.get(key)!.push({ seq, at });
      }
      if (times === 1 && seq < (highest.get(key) ?? 0)) {
        const channel = key.split(' ')[0]!;
        this.outOfOrder[channel] = (this.outOfOrder[channel] ?? 0) + 1;
      }
      highest.set(key, Math.max(seq, highest.get(key) ?? 0));
    };
    for (const roomId of this.hs.rooms()) {
      for (const event of this.hs.messages(roomId)) add(`matrix ${roomId}`, String(event.content.body ?? ''), event.origin_server_ts);
    }
    for (const mail of this.smtp?.messages ?? []) {
      for (const to of mail.envelope.to) add(`email ${to}`, mail.parsed.subject ?? mail.parsed.text, mail.receivedAt);
    }
    for (const message of this.slack?.messages ?? []) add(`slack ${message.requested}`, message.text, message.receivedAt);
    return seen;
  }

  /** Inversions per target (see the header), over the arrivals of the last `observed()`; targets without any left out. */
  async inversionsByTarget(): Promise<Record<string, number>> {
    const place = await this.#placeInStream();
    const out: Record<string, number> = {};
    for (const [target, list] of this.arrivals) {
      const n = countInversions(list.map((a) => place.get(a.seq) ?? a.seq));
      if (n) out[target] = n;
    }
    return out;
  }

  /** Resends the hub folded: the id of the copy acknowledged to the producer → the id of the first copy (read from the events stream as it grows). */
  #firstCopy = new Map<string, string>();
  #eventsRead = '-';

  /** Each message's place in `notify:in`, by the id of the copy the hub routed. */
  async #placeInStream(): Promise<Map<number, number>> {
    const events = (await this.redis.xrange(`${this.prefix}:events`, this.#eventsRead, '+')) as Array<[string, string[]]>;
    for (const [id, flat] of events) {
      this.#eventsRead = `(${id}`;
      const f = fromPairs(flat);
      if (f.type === 'duplicate' && f.entry && f.first) this.#firstCopy.set(f.entry, f.first);
    }
    const routed = [...this.sent.values()].map((s) => ({ seq: s.seq, id: this.#firstCopy.get(s.id) ?? s.id }));
    routed.sort((a, b) => compareEntryIds(a.id, b.id));
    return new Map(routed.map((m, i) => [m.seq, i]));
  }

  /** Milliseconds from XADD to the homeserver's event, over the Matrix deliveries to rooms `which` selects: p50, p99, max. */
  latency(which: (roomId: string) => boolean = () => true, from = 0): { n: number; p50: number; p99: number; max: number } {
    const all: number[] = [];
    for (const roomId of this.hs.rooms().filter(which)) {
      for (const event of this.hs.messages(roomId)) {
        const sent = this.sent.get(Number(/seq=(\d+)/.exec(String(event.content.body ?? ''))?.[1]));
        if (sent && sent.seq > from) all.push(event.origin_server_ts - sent.at);
      }
    }
    all.sort((a, b) => a - b);
    const at = (q: number) => all[Math.min(all.length - 1, Math.floor(q * all.length))] ?? 0;
    return { n: all.length, p50: at(0.5), p99: at(0.99), max: all.at(-1) ?? 0 };
  }

  /** The dead letters: `channel target` → sequence numbers, and the reasons. */
  async deadLetters(): Promise<{ pairs: Set<string>; reasons: Record<string, number>; count: number; ingress: Set<number>; at: Map<string, number> }> {
    const rows = (await this.redis.xrange(`${this.prefix}:dead`, '-', '+')) as Array<[string, string[]]>;
    const pairs = new Set<string>();
    const ingress = new Set<number>();
    const reasons: Record<string, number> = {};
    /** When each pair (`channel target seq`) or bad entry (`bad seq`) was first dead-lettered. */
    const at = new Map<string, number>();
    const stamp = (key: string, id: string) => {
      if (!at.has(key)) at.set(key, Number(id.split('-')[0]));
    };
    for (const [id, flat] of rows) {
      const f = fromPairs(flat);
      // The body carries the sequence number; a bad entry may carry it elsewhere (subject, content).
      const carrier = f.body ?? Object.entries(f).find(([k, v]) => k !== 'reason' && /seq=\d+/.test(v))?.[1] ?? '';
      const seq = Number(/seq=(\d+)/.exec(carrier)?.[1] ?? NaN);
      if (f.stage === 'ingress') {
        ingress.add(seq);
        stamp(`bad ${seq}`, id);
      }
      const reason = `${f.stage}: ${shortReason(f.reason ?? '')}`;
      reasons[reason] = (reasons[reason] ?? 0) + 1;
      const dead = f.stage === 'delivery' ? [`${f.channel} ${f.target} ${seq}`] : this.sent.get(seq)?.bad ? [] : (this.sent.get(seq)?.targets ?? []).map((t) => `${t} ${seq}`);
      for (const pair of dead) {
        pairs.add(pair);
        stamp(pair, id);
      }
    }
    return { pairs, reasons, count: rows.length, ingress, at };
  }

  /** The figures now. */
  async figures(): Promise<Figures> {
    const seen = this.observed();
    const dead = await this.deadLetters();
    let expected = 0;
    let delivered = 0;
    let lost = 0;
    let deliveredAndDead = 0;
    let destroyed = 0;
    const expectedPairs = new Set<string>();
    for (const s of this.sent.values()) {
      for (const t of s.targets) {
        expected += 1;
        const key = `${t} ${s.seq}`;
        expectedPairs.add(key);
        const got = (seen.get(t)?.get(s.seq) ?? 0) > 0;
        const gaveUp = dead.pairs.has(key);
        if (got) delivered += 1;
        if (got && gaveUp) deliveredAndDead += 1;
        if (!got && !gaveUp && this.destroyed.has(key)) destroyed += 1;
        else if (!got && !gaveUp) lost += 1;
      }
    }
    // A bad entry is one more thing sent that must end somewhere: in the dead-letter stream, never dropped.
    let bad = 0;
    let badDead = 0;
    for (const s of this.sent.values()) {
      if (!s.bad) continue;
      bad += 1;
      if (dead.ingress.has(s.seq)) badDead += 1;
      else lost += 1;
    }
    let duplicates = 0;
    let unexpected = 0;
    const duplicatesByChannel: Record<string, number> = {};
    for (const [target, bySeq] of seen) {
      for (const [seq, times] of bySeq) {
        duplicates += times - 1;
        if (times > 1) duplicatesByChannel[target.split(' ')[0]!] = (duplicatesByChannel[target.split(' ')[0]!] ?? 0) + times - 1;
        if (!expectedPairs.has(`${target} ${seq}`) && this.sent.has(seq)) unexpected += 1;
      }
    }
    const deadOnly = [...dead.pairs].filter((p) => expectedPairs.has(p)).length;
    const inversionsByTarget = await this.inversionsByTarget();
    const inversions = Object.values(inversionsByTarget).reduce((a, b) => a + b, 0);
    return {
      scenario: this.scenario,
      messages: this.sent.size,
      bad,
      sent: expected + bad,
      delivered,
      duplicates,
      dead: deadOnly + badDead,
      reasons: dead.reasons,
      lost,
      inversions,
      longestPauseMs: this.#longestPause(dead.at),
      deliveredAndDead,
      unexpected,
      seconds: Math.round((Date.now() - this.#started) / 100) / 10,
      notes: {
        ...this.notes,
        ...this.#matrixNotes(),
        ...(duplicates ? { duplicatesByChannel } : {}),
        ...(Object.keys(this.outOfOrder).length ? { outOfOrder: this.outOfOrder } : {}),
        ...(inversions ? { inversionsByTarget } : {}),
        ...(this.destroyed.size ? { destroyedByOperator: this.destroyed.size, destroyedAndNotDelivered: destroyed } : {}),
      },
    };
  }

  /** The longest pause (see the header) over every pair sent, from the arrivals of the last `observed()` and the dead letters' times. */
  #longestPause(deadAt: Map<string, number>): number {
    const firstArrival = new Map<string, number>();
    for (const [target, list] of this.arrivals) for (const { seq, at } of list) firstArrival.set(`${target} ${seq}`, at);
    const now = Date.now();
    const pairs: Array<{ start: number; done: number }> = [];
    for (const s of this.sent.values()) {
      for (const t of s.targets) {
        const key = `${t} ${s.seq}`;
        const done = Math.min(firstArrival.get(key) ?? now, deadAt.get(key) ?? now);
        // A delivery an operator destroyed never completes, and is not waited for.
        if (done === now && this.destroyed.has(key)) continue;
        pairs.push({ start: s.at, done });
      }
      if (s.bad) pairs.push({ start: s.at, done: deadAt.get(`bad ${s.seq}`) ?? now });
    }
    if (pairs.length === 0) return 0;
    pairs.sort((a, b) => a.done - b.done);
    // earliest[i]: the earliest XADD among the pairs completing at or after pairs[i].
    const earliest = new Array<number>(pairs.length);
    for (let i = pairs.length - 1, min = Infinity; i >= 0; i -= 1) earliest[i] = min = Math.min(min, pairs[i]!.start);
    let longest = 0;
    let previous = -Infinity;
    for (let i = 0; i < pairs.length; i += 1) {
      const done = pairs[i]!.done;
      if (done > previous) longest = Math.max(longest, done - Math.max(previous, earliest[i]!));
      previous = Math.max(previous, done);
    }
    return longest;
  }

  /** Sends the homeserver answered again for a transaction id it had seen: duplicates that Matrix absorbed. */
  #matrixNotes(): Record<string, number> {
    const sends = this.hs.requests().filter((r) => r.method === 'PUT' && r.path.includes('/send/'));
    const ok = sends.filter((r) => r.status === 200);
    const distinct = new Set(ok.map((r) => r.path)).size;
    return sends.length ? { matrixSendRequests: sends.length, resendsAbsorbedByTxnId: ok.length - distinct } : {};
  }

  /** Stream lengths: entries not yet routed or settled. */
  async backlog(): Promise<number> {
    const keys = [`${this.prefix}:in`, ...this.#options.channels.map((c) => `${this.prefix}:deliver:${c}`)];
    const lengths = await Promise.all(keys.map((k) => this.redis.xlen(k)));
    return lengths.reduce((a, b) => a + b, 0);
  }

  /**
   * Wait until every message sent is delivered or dead-lettered and nothing
   * is left in the streams, then a little longer for late duplicates. It
   * waits as long as deliveries keep settling (a loaded machine is slow, not
   * stuck), and gives up after `stallMs` without any.
   */
  async settle(stallMs = 120_000): Promise<Figures> {
    let progress = '';
    let since = Date.now();
    for (;;) {
      const f = await this.figures();
      const backlog = await this.backlog();
      if (f.lost === 0 && this.#inFlightXadds === 0 && backlog === 0) break;
      const now = `${f.delivered} ${f.dead} ${backlog}`;
      if (now !== progress) [progress, since] = [now, Date.now()];
      else if (Date.now() - since > stallMs) {
        this.notes.settleTimedOut = `nothing settled for ${stallMs} ms: backlog ${backlog}, lost so far ${f.lost}`;
        break;
      }
      await sleep(250);
    }
    await sleep(750);
    return this.figures();
  }

  /** Print the figures line, append it to the results file, and assert what the scenario promises. */
  report(f: Figures, promise: { duplicates?: 'none' | 'counted'; order?: 'per target' | { notPromised: string } } = {}): void {
    f.notes = { ...f.notes, ...this.notes };
    const reasons = Object.entries(f.reasons).map(([r, n]) => `${n}× ${r}`).join('; ');
    const notes = Object.entries(f.notes).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ');
    const line =
      `[faults] ${f.scenario}: sent ${f.sent} (${f.messages} messages${f.bad ? `, ${f.bad} of them bad input` : ''}), delivered ${f.delivered}, duplicates ${f.duplicates}, ` +
      `dead-lettered ${f.dead}${reasons ? ` (${reasons})` : ''}, lost ${f.lost}, inversions ${f.inversions}, longest pause ${(f.longestPauseMs / 1000).toFixed(1)} s` +
      `${f.deliveredAndDead ? `, delivered yet dead-lettered ${f.deliveredAndDead}` : ''}${f.unexpected ? `, unexpected ${f.unexpected}` : ''}` +
      ` — ${f.seconds} s${notes ? `; ${notes}` : ''}`;
    console.log(line);
    mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
    appendFileSync(RESULTS_FILE, `${JSON.stringify({ at: new Date().toISOString(), line, ...f })}\n`);
    assert.equal(f.lost, 0, `${f.scenario}: ${f.lost} deliveries lost`);
    assert.equal(f.unexpected, 0, `${f.scenario}: deliveries to targets the message was not for`);
    if ((promise.duplicates ?? 'none') === 'none') assert.equal(f.duplicates, 0, `${f.scenario}: duplicates`);
    if ((promise.order ?? 'per target') === 'per target') assert.equal(f.inversions, 0, `${f.scenario}: deliveries out of order per target ${JSON.stringify(f.notes.inversionsByTarget)}`);
  }

  /** Kill every process, stop the peers, drop the prefix, remove the temp dir. Never throws. */
  async close(): Promise<string[]> {
    const problems: string[] = [];
    await Promise.all(this.processes.map((p) => p.kill('SIGKILL')));
    const violations = this.hs?.takeSpecViolations() ?? [];
    if (violations.length) problems.push(`Matrix spec violations:\n- ${[...new Set(violations)].slice(0, 10).join('\n- ')}`);
    if (this.slack?.violations.length) problems.push(`Slack spec violations:\n- ${[...new Set(this.slack.violations)].slice(0, 10).join('\n- ')}`);
    await this.hs?.close().catch((err: Error) => problems.push(err.message));
    await this.smtp?.close().catch(() => {});
    await this.slack?.close().catch(() => {});
    await dropPrefix(this.prefix, this.redis).catch(() => {});
    this.redis.disconnect();
    this.producer.disconnect();
    rmSync(this.dir, { recursive: true, force: true });
    return problems;
  }
}

/** Pairs (i < j) with values[i] > values[j], by merge sort: O(n log n). */
export function countInversions(values: number[]): number {
  if (values.length < 2) return 0;
  const middle = values.length >> 1;
  const left = values.slice(0, middle);
  const right = values.slice(middle);
  let count = countInversions(left) + countInversions(right);
  left.sort((a, b) => a - b);
  right.sort((a, b) => a - b);
  for (let i = 0, j = 0; i < left.length; i += 1) {
    while (j < right.length && right[j]! < left[i]!) j += 1;
    count += j;
  }
  return count;
}

/** A reason without its ids and numbers, so that reasons group. */
function shortReason(reason: string): string {
  return reason
    .replace(/![A-Za-z]+:[\w.-]+/g, '<room>')
    .replace(/@[\w.-]+:[\w.-]+/g, '<user>')
    .replace(/\$[\w-]+/g, '<event>')
    .replace(/"[^"]{40,}"/g, '"…"')
    .replace(/at position \d+ \(line \d+ column \d+\)/g, 'at position N')
    .slice(0, 160);
}

/**
 * One rig per test of the calling file: after each test it is closed (with
 * whatever `onClose` added: a private Redis, a proxy) and its problems fail
 * the test; after the file every process spawned is killed.
 */
export function rigPerTest(): { start(options: RigOptions): Promise<Rig>; onClose(close: () => unknown): void } {
  let rig: Rig | undefined;
  let closers: Array<() => unknown> = [];
  afterEach(async () => {
    const problems = (await rig?.close()) ?? [];
    for (const close of closers.reverse()) await close();
    rig = undefined;
    closers = [];
    if (problems.length) throw new Error(problems.join('\n'));
  });
  after(killAll);
  return {
    async start(options) {
      rig = await Rig.start(options);
      return rig;
    },
    onClose(close) {
      closers.push(close);
    },
  };
}

/** Wait until `check` holds (polling), or throw naming `what`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
