import { Command } from 'commander';
import type { Redis } from 'ioredis';
import { HubError } from '../errors.ts';
import type { Keys } from '../redis/keys.ts';
import { fromPairs } from '../redis/fields.ts';
import { print, withApp } from './context.ts';

const MESSAGE_FIELDS = ['to', 'subject', 'body', 'format', 'id', 'channels', 'content'];
const DELIVERY_FIELDS = ['delivery', 'entry', 'channel', 'target', 'to', 'subject', 'body', 'format', 'id'];

async function select(redis: Redis, keys: Keys, ids: string[], all: boolean): Promise<Array<Record<string, string>>> {
  if (!all && ids.length === 0) throw new HubError('HUB_ERR_USAGE', 'name the dead letters (ids from hub dead list) or pass --all');
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
    .option('--limit <n>', 'at most this many', '100')
    .action(async (opts: { json?: boolean; limit: string }) => {
      await withApp(async ({ cradle: { redis, keys, redactor } }) => {
        const rows = ((await redis.xrange(keys.dead, '-', '+', 'COUNT', Number(opts.limit) || 100)) as Array<[string, string[]]>).map(
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
      });
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
      });
    });
  return dead;
}
