/**
 * `hub dead replay`: dead letters go back where they came from, each in one
 * REPLAY script call with its check and its deletion, so that a letter is
 * replayed once however many replays run at the same time, and a replayed
 * delivery joins the end of its target's order in the same step as its stream.
 * It keeps its delivery id, so that the peer's idempotency (Matrix transaction
 * ids) still recognises it.
 */
import type { Redis } from 'ioredis';
import { pairs } from '../redis/fields.ts';
import type { Keys } from '../redis/keys.ts';
import { replayOf } from './dead-letter.ts';

/** A dead letter as read: its id in the dead stream, and its fields (among them the producer's own `id`, when it gave one). */
export interface Letter {
  id: string;
  fields: Record<string, string>;
}

/** Letters per script call: Redis does nothing else while one runs. */
const PER_CALL = 50;

/** What became of one letter: the entry it is now, or why Redis refused it (it stays a letter), or neither when another replay (or a purge) took it first. */
export interface ReplayResult {
  letter: string;
  entry?: string;
  refused?: string;
}

/** Replay `letters`, in order. */
export async function replayLetters(redis: Redis, keys: Keys, letters: readonly Letter[]): Promise<ReplayResult[]> {
  const out: ReplayResult[] = [];
  for (let i = 0; i < letters.length; i += PER_CALL) {
    const batch = letters.slice(i, i + PER_CALL);
    const scriptKeys: string[] = [keys.dead];
    const args: Array<string | number> = [];
    for (const letter of batch) {
      const replayed = replayOf(letter.fields);
      if (replayed.stage === 'delivery') scriptKeys.push(keys.deliver(replayed.channel), keys.order(replayed.channel, replayed.target));
      else scriptKeys.push(keys.in, keys.in);
      const fields = pairs(replayed.fields);
      args.push(letter.id, fields.length / 2, ...fields);
    }
    const entries = await redis.replayDead(scriptKeys.length, ...scriptKeys, ...args);
    batch.forEach((letter, j) => {
      const reply = entries[j] ?? '';
      out.push({ letter: letter.id, ...(reply.startsWith('!') ? { refused: reply.slice(1) } : reply ? { entry: reply } : {}) });
    });
  }
  return out;
}
