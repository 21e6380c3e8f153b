import { Command } from 'commander';
import type { Redis } from 'ioredis';
import { HubError } from '../errors.ts';
import { type Letter, replayLetters } from '../journal/replay.ts';
import type { Keys } from '../redis/keys.ts';
import { fromPairs } from '../redis/fields.ts';
import { positiveInteger, print, withApp } from './context.ts';

/** Letters read per round trip. */
const PAGE = 500;

const MAX_U64 = 2n ** 64n - 1n;

/** A stream entry id as Redis takes it (`1717171717171-0`); Redis would answer anything else with a bare ReplyError. */
function isEntryId(id: string): boolean {
  const match = /^(\d{1,20})-(\d{1,20})$/.exec(id);
  return match !== null && BigInt(match[1]!) <= MAX_U64 && BigInt(match[2]!) <= MAX_U64;
}

/** What a replay or purge names: checked before Redis is reached. */
function checkSelection(ids: string[], all: boolean): void {
  if (!all && ids.length === 0) throw new HubError('HUB_ERR_USAGE', 'name the dead letters (ids from hub dead list) or pass --all');
  if (all && ids.length > 0) throw new HubError('HUB_ERR_USAGE', 'give dead letter ids or --all, not both');
  const malformed = ids.filter((id) => !isEntryId(id));
  if (malformed.length) {
    throw new HubError('HUB_ERR_USAGE', `${malformed.map((id) => JSON.stringify(id)).join(', ')} ${malformed.length > 1 ? 'are not dead letter ids' : 'is not a dead letter id'}; ids look like 1717171717171-0 (see hub dead list)`);
  }
}

/**
 * The named dead letters (all of them found, or an error naming those that are
 * not), or with `all` every letter there was when the command started, a page
 * at a time: the letters a replay itself causes (a target still refusing) come
 * after that and are left for the next replay.
 */
async function* select(redis: Redis, keys: Keys, ids: string[], all: boolean): AsyncGenerator<Letter[]> {
  // A letter's own `id` field is the producer's idempotency key, not the letter's id.
  const read = (rows: Array<[string, string[]]>): Letter[] => rows.map(([id, flat]) => ({ id, fields: fromPairs(flat) }));
  if (!all) {
    const found = read((await Promise.all(ids.map((id) => redis.xrange(keys.dead, id, id)))).flat() as Array<[string, string[]]>);
    const missing = ids.filter((id) => !found.some((r) => r.id === id));
    if (missing.length) throw new HubError('HUB_ERR_NOT_FOUND', `no dead letter ${missing.join(', ')}; see hub dead list`);
    yield found;
    return;
  }
  const last = ((await redis.xrevrange(keys.dead, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>)[0]?.[0];
  for (let from = '-'; last !== undefined; ) {
    const page = read((await redis.xrange(keys.dead, from, last, 'COUNT', PAGE)) as Array<[string, string[]]>);
    if (page.length === 0) return;
    yield page;
    from = `(${page.at(-1)!.id}`;
  }
}

export function deadCommand(): Command {
  const dead = new Command('dead').description('what could not be delivered, with the reason; replay it once fixed');
  dead
    .command('list')
    .description('the dead letters, oldest first')
    .option('--json', 'machine-readable output, with every field')
    .option('--limit <n>', 'at most this many', positiveInteger('--limit'), 100)
    .action(async (opts: { json?: boolean; limit: number }) => {
      await withApp(async ({ cradle: { redis, keys, redactor } }) => {
        const rows = ((await redis.xrange(keys.dead, '-', '+', 'COUNT', opts.limit)) as Array<[string, string[]]>).map(
          ([id, flat]) => JSON.parse(redactor.redact(JSON.stringify({ id, ...fromPairs(flat) }))) as Record<string, string>,
        );
        print(rows, opts.json ?? false, () =>
          rows.length === 0 ? 'no dead letters' : rows.map((r) => `${r.id}  ${r.stage}  ${r.channel ? `${r.channel} ${r.target}  ` : ''}${r.reason}`).join('\n'),
        );
      });
    });
  dead
    .command('replay')
    .description('send dead letters again (after fixing the mapping, the target or the peer)')
    .argument('[ids...]', 'dead letter ids')
    .option('--all', 'every dead letter')
    .action(async (ids: string[], opts: { all?: boolean }) => {
      await withApp(async ({ cradle: { redis, keys } }) => {
        for await (const letters of select(redis, keys, ids, opts.all ?? false)) {
          for (const { letter, entry, refused } of await replayLetters(redis, keys, letters)) {
            if (entry) process.stdout.write(`${letter} → ${entry}\n`);
            else if (refused) {
              process.stderr.write(`${letter}: not replayed, Redis refused it (${refused}); it stays a dead letter\n`);
              process.exitCode = 1;
            } else process.stdout.write(`${letter}: replayed or purged meanwhile by another command; skipped\n`);
          }
        }
      }, () => checkSelection(ids, opts.all ?? false));
    });
  dead
    .command('purge')
    .description('delete dead letters for good')
    .argument('[ids...]', 'dead letter ids')
    .option('--all', 'every dead letter')
    .action(async (ids: string[], opts: { all?: boolean }) => {
      await withApp(async ({ cradle: { redis, keys } }) => {
        let purged = 0;
        for await (const letters of select(redis, keys, ids, opts.all ?? false)) purged += await redis.xdel(keys.dead, ...letters.map((l) => l.id));
        process.stdout.write(`purged ${purged} dead letter(s)\n`);
      }, () => checkSelection(ids, opts.all ?? false));
    });
  return dead;
}
