import { Command } from 'commander';
import type { Redis } from 'ioredis';
import { HubError } from '../errors.ts';
import type { Keys } from '../redis/keys.ts';
import { fromPairs } from '../redis/fields.ts';
import { positiveInteger, print, withApp } from './context.ts';

const MESSAGE_FIELDS = ['to', 'subject', 'body', 'format', 'id', 'channels', 'content'];
const DELIVERY_FIELDS = ['delivery', 'entry', 'channel', 'target', 'to', 'subject', 'body', 'format', 'id'];

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

async function select(redis: Redis, keys: Keys, ids: string[], all: boolean): Promise<Array<Record<string, string>>> {
  const rows = all
    ? ((await redis.xrange(keys.dead, '-', '+')) as Array<[string, string[]]>)
    : ((await Promise.all(ids.map((id) => redis.xrange(keys.dead, id, id)))).flat() as Array<[string, string[]]>);
  const found = rows.map(([id, flat]) => ({ ...fromPairs(flat), id }));
  const missing = ids.filter((id) => !found.some((r) => r.id === id));
  if (missing.length) throw new HubError('HUB_ERR_NOT_FOUND', `no dead letter ${missing.join(', ')}; see hub dead list`);
  return found;
}

/**
 * Send a dead letter again: an ingress one goes back to the ingress stream; a
 * delivery one back to its channel's stream with its delivery id, so that the
 * peer's idempotency (Matrix transaction ids) still recognises it.
 */
async function replay(redis: Redis, keys: Keys, letter: Record<string, string>): Promise<string> {
  const delivery = letter.stage === 'delivery';
  const names = delivery ? DELIVERY_FIELDS : MESSAGE_FIELDS;
  const fields = names.flatMap((name) => (letter[name] !== undefined ? [name, letter[name]!] : []));
  const stream = delivery ? keys.deliver(letter.channel!) : keys.in;
  const id = (await redis.xadd(stream, '*', ...fields))!;
  // A replayed delivery takes its place at the end of its target's order.
  const multi = redis.multi();
  if (delivery) multi.rpush(keys.order(letter.channel!, letter.target!), id);
  await multi.xdel(keys.dead, letter.id!).exec();
  return id;
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
        for (const letter of await select(redis, keys, ids, opts.all ?? false)) {
          process.stdout.write(`${letter.id} → ${await replay(redis, keys, letter)}\n`);
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
        const letters = await select(redis, keys, ids, opts.all ?? false);
        if (letters.length) await redis.xdel(keys.dead, ...letters.map((l) => l.id!));
        process.stdout.write(`purged ${letters.length} dead letter(s)\n`);
      }, () => checkSelection(ids, opts.all ?? false));
    });
  return dead;
}
