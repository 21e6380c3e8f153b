import type { Redis, Result } from 'ioredis';
import type { DeadLetter } from '../journal/dead-letter.ts';
import { type DeliveryRecord, type OutcomeKind, deliveryRecordField } from '../journal/record.ts';
import { HOLDER_OF_LUA, SETTLE_LUA } from '../journal/scripts.ts';
import type { Keys } from '../redis/keys.ts';
import { ERROR_TEXT_LUA } from '../redis/lua-error.ts';
import { pushPairs } from '../redis/fields.ts';
import { BEGIN_LUA, makingKey } from './pending.ts';

export interface Outcome {
  kind: OutcomeKind;
  channel: string;
  streamEntry: string;
  deliveryId: string;
  messageId: string;
  record: DeliveryRecord;
  /** For `dead`: the dead letter (reason, error and the fields replay needs). */
  deadLetter?: DeadLetter;
}

/**
 * Whether a delivery may be made now (BEGIN_LUA in core/runtime/pending.ts): `go` (its turn, pending to this
 * worker, and now marked as being made by it), `not ours` (settled, taken over, or its group made anew and read by
 * another), `wait` (another worker is making it now), `{ after }` (the older delivery `after` heads its target's
 * order list; its settling is published on this worker's wake channel), `{ handedTo }` (handed to the worker
 * holding that head, its entry id published on that worker's wake channel).
 */
export type Turn = 'go' | 'not ours' | 'wait' | { after: string } | { handedTo: string };

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: Error) => void;
}

interface Call {
  /** Events and dead streams, then five keys per outcome. */
  keys: string[];
  /** The call's values (ARGV[4] the count of outcomes, filled in when sent), then each outcome's. */
  args: Array<string | number>;
  /** Four keys and the entry id per turn asked: after the outcomes'. */
  turnKeys: string[];
  turnArgs: string[];
  outcomes: Array<Waiter<void>>;
  turns: Array<Waiter<Turn>>;
  /** Sent sooner than the end of the loop's turn: a turn is in it. */
  soon: boolean;
  sent: boolean;
}

/** Outcomes and turns in one script call at most: the script holds Redis for its whole batch. */
const MAX_BATCH = 128;

/**
 * KEYS: events, dead, then five per outcome (settle_one's), then four per turn (deliver stream, attempt mark, order
 * list, its waiters: the stream for both when the order is not asked). ARGV: group, record ttl ms, events maxlen,
 * the count of outcomes, consumer, attempt mark ttl ms, its wake channel, the wake channels' prefix, the hand-over
 * bound, then each outcome's (settle_one's), then each turn's entry id. Each outcome and each turn fails alone
 * (pcall): a key of the wrong type or a Redis out of memory holds back what it touches, not the rest of the call.
 * Returns {per outcome '' or why it failed, per turn begin_one's answer}.
 */
const TICK = `${HOLDER_OF_LUA}${SETTLE_LUA}${BEGIN_LUA}${ERROR_TEXT_LUA}
local s = {events = KEYS[1], dead = KEYS[2], group = ARGV[1], ttl = ARGV[2], maxlen = ARGV[3]}
local ka, a = 2, 9
local settled = {}
for i = 1, tonumber(ARGV[4]) do
  local ok, e = pcall(settle_one, s, ka, a)
  settled[i] = ok and '' or error_text(e)
  ka, a = ka + 5, a + settle_size(a)
end
local w = {group = ARGV[1], consumer = ARGV[5], ttl = ARGV[6], wake = ARGV[7], prefix = ARGV[8], below = tonumber(ARGV[9])}
local turns = {}
for i = 1, (#KEYS - ka) / 4 do
  local ok, turn = pcall(begin_one, w, KEYS[ka + 1], KEYS[ka + 2], KEYS[ka + 3], KEYS[ka + 4], ARGV[a + i])
  turns[i] = ok and turn or {-2, error_text(turn)}
  ka = ka + 4
end
return {settled, turns}
`;

export const tickScripts = { workerTick: TICK };

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** KEYS and ARGV as arrays, which ioredis flattens into the call. */
    workerTick(numKeys: number, keys: readonly string[], turnKeys: readonly string[], args: ReadonlyArray<string | number>, turnArgs: readonly string[]): Result<[string[], Array<[number, string?]>], Context>;
  }
}

/**
 * What a worker has for Redis in one tick, in one script call: the outcomes of
 * the deliveries it made (acknowledgement, delivery record, outcome event and
 * dead letter: settle_one in core/journal/scripts.ts), then the turns of the
 * deliveries it is about to make (begin_one in core/runtime/pending.ts). The
 * delivery that follows a settled one to the same target asks its turn in the
 * very call that settles it, after it: Redis finds the older one settled, and
 * a delivery costs one command and one round trip, not two. A call with a
 * turn in it goes as soon as the callback that asked is done; outcomes alone
 * go at the end of the loop's turn, with the others that ended in it.
 */
export class TickCall {
  #redis: Redis;
  #keys: Keys;
  /** The worker's deliver stream: every outcome and turn of this call is of its channel. */
  #stream: string;
  #values: Array<string | number>;
  #call: Call | undefined;

  /** `markTtlMs`, `wake`, `wakePrefix` and `handOverBelow`: what begin_one takes (core/runtime/pending.ts). */
  constructor(deps: { redis: Redis; keys: Keys; channel: string; consumer: string; retentionMs: number; eventsMaxLen: number; markTtlMs: number; wake: string; wakePrefix: string; handOverBelow: number }) {
    this.#redis = deps.redis;
    this.#keys = deps.keys;
    this.#stream = deps.keys.deliver(deps.channel);
    this.#values = [deps.channel, deps.retentionMs, deps.eventsMaxLen, 0, deps.consumer, deps.markTtlMs, deps.wake, deps.wakePrefix, deps.handOverBelow];
  }

  /** Queue an outcome, written with the others of this tick; resolves once Redis has written it. */
  settle(outcome: Outcome): Promise<void> {
    const { record } = outcome;
    const call = this.#current();
    const stream = this.#stream;
    call.keys.push(
      stream,
      this.#keys.message(outcome.messageId),
      this.#keys.order(outcome.channel, record.target),
      makingKey(stream, outcome.streamEntry),
      this.#keys.orderWaiters(outcome.channel, record.target),
    );
    // The counts of the event's and the dead letter's pairs, filled in as they are written (in place: see pushPairs).
    const at = call.args.length + 4;
    call.args.push(outcome.streamEntry, deliveryRecordField(outcome.deliveryId), outcome.kind, JSON.stringify(record), 0, 0);
    call.args[at] = pushPairs(call.args, {
      type: outcome.kind,
      entry: outcome.messageId,
      delivery: outcome.deliveryId,
      channel: outcome.channel,
      target: record.target,
      attempts: record.attempts,
      peer: record.peerId,
      error: record.error,
    });
    if (outcome.deadLetter) call.args[at + 1] = pushPairs(call.args, outcome.deadLetter);
    const written = new Promise<void>((resolve, reject) => call.outcomes.push({ resolve, reject }));
    this.#full(call);
    return written;
  }

  /**
   * Ask whether the delivery at `entry` may be made now, after this tick's outcomes; with its target's `order`
   * list, whether its turn has come (a first attempt), else only whether it is still this worker's to make.
   */
  turn(entry: string, order?: { list: string; waiters: string }): Promise<Turn> {
    const call = this.#current();
    const stream = this.#stream;
    call.turnKeys.push(stream, makingKey(stream, entry), order?.list ?? stream, order?.waiters ?? stream);
    call.turnArgs.push(entry);
    const answer = new Promise<Turn>((resolve, reject) => call.turns.push({ resolve, reject }));
    // A delivery waits for its turn: the call goes once this callback's work is done (the outcome settled just
    // before is in it), not after every other callback of the loop's turn. Outcomes alone wait for the end of it,
    // to go with the others of the tick.
    if (!call.soon) {
      call.soon = true;
      process.nextTick(() => this.#send(call));
    }
    this.#full(call);
    return answer;
  }

  #full(call: Call): void {
    if (call.outcomes.length + call.turns.length >= MAX_BATCH && this.#call === call) this.#call = undefined;
  }

  #current(): Call {
    if (this.#call) return this.#call;
    const call: Call = { keys: [this.#keys.events, this.#keys.dead], args: [...this.#values], turnKeys: [], turnArgs: [], outcomes: [], turns: [], soon: false, sent: false };
    this.#call = call;
    setImmediate(() => this.#send(call));
    return call;
  }

  #send(call: Call): void {
    if (call.sent) return;
    call.sent = true;
    if (this.#call === call) this.#call = undefined;
    call.args[3] = call.outcomes.length;
    this.#redis.workerTick(call.keys.length + call.turnKeys.length, call.keys, call.turnKeys, call.args, call.turnArgs).then(
      ([settled, turns]) => {
        call.outcomes.forEach((outcome, i) => (settled[i] ? outcome.reject(new Error(settled[i])) : outcome.resolve()));
        call.turns.forEach((turn, i) => {
          const [code, other] = turns[i]!;
          if (code === -2) turn.reject(new Error(other));
          else turn.resolve(code === 1 ? 'go' : code === 0 ? 'not ours' : code === -1 ? 'wait' : code === 2 ? { after: other! } : { handedTo: other! });
        });
      },
      (err: Error) => {
        for (const waiter of [...call.outcomes, ...call.turns]) waiter.reject(err);
      },
    );
  }
}
