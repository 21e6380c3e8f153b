/**
 * The latency floor, run as two child processes in place of the hub and the
 * matrix worker: every round trip a message makes through them, with no logic
 * around it. What each step guards is left out (the mapping, deduplication,
 * the record, retries, and unless `guarded` order and rendering), the trips stay:
 *
 * - hub: XREADGROUP from `<prefix>:in`, then one script call per batch that
 *   XADDs each entry to `<prefix>:deliver:matrix` and XACKs it (routing is
 *   atomic, so it is a script);
 * - worker: XREADGROUP from the deliver stream, then per delivery its begin
 *   (marked begun), a `/sync?timeout=0` asked after it began (shared by the
 *   deliveries waiting when it is asked, as the fail-closed check shares it),
 *   the PUT, and its settle (XACK, XDEL, the mark gone); the settles and
 *   begins of one tick in one script call, settles first, as the worker's
 *   (core/runtime/tick-call.ts).
 *
 * With `guarded`, the worker keeps two of the guarantees the design cannot
 * give up, as the plugin keeps them: a room's messages go one after another
 * (the next one's begin is asked in the call that settles the previous one,
 * once its PUT is answered), and each message
 * is rendered and sanitized as the matrix plugin renders it
 * (plugins/matrix/message.ts). What it shows: how far the tail can come down
 * while order and safe HTML hold.
 *
 * `node bench/lib/skeleton.ts hub|worker <redisUrl> <prefix> [homeserver] [concurrency] [bare|guarded]`;
 * it says `ready` over IPC once its consumer group exists.
 */
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { HS_TOKEN } from './homeserver-client.ts';

const [role, url = 'redis://127.0.0.1:6379', prefix = '', homeserver = '', concurrencyArg = '10', mode = 'bare'] = process.argv.slice(2);
const guarded = mode === 'guarded';
// Only the guarded worker renders: the bare skeleton loads nothing of the hub's.
const { messageContent } = guarded ? await import('../../plugins/matrix/message.ts') : { messageContent: undefined };
const IN = `${prefix}:in`;
const DELIVER = `${prefix}:deliver:matrix`;
const GROUP = 'skeleton';

const ROUTE = `
for i = 1, #ARGV, 4 do
  redis.call('XADD', KEYS[2], '*', 'entry', ARGV[i], 'room', ARGV[i + 1], 'subject', ARGV[i + 2], 'body', ARGV[i + 3])
  redis.call('XACK', KEYS[1], '${GROUP}', ARGV[i])
end
return #ARGV / 4`;
// ARGV: the count of settles, their ids, then the ids to begin.
const TICK = `
local n = tonumber(ARGV[1])
for i = 2, n + 1 do
  redis.call('XACK', KEYS[1], '${GROUP}', ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[2], ARGV[i])
end
for i = n + 2, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], 1) end
return #ARGV - n - 1`;

type Entries = Array<[string, string[]]>;
type Skeleton = Redis & {
  routeBatch(inKey: string, deliverKey: string, ...args: string[]): Promise<number>;
  workerTick(deliverKey: string, markKey: string, settles: number, ...ids: string[]): Promise<number>;
};

const redis = new Redis(url) as Skeleton;
redis.defineCommand('routeBatch', { numberOfKeys: 2, lua: ROUTE });
redis.defineCommand('workerTick', { numberOfKeys: 2, lua: TICK });
const reader = redis.duplicate();
let stopping = false;
process.once('SIGTERM', () => {
  stopping = true;
  reader.disconnect();
  redis.disconnect();
  process.exit(0);
});

async function group(stream: string): Promise<void> {
  await redis.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM').catch((err: Error) => {
    if (!err.message.includes('BUSYGROUP')) throw err;
  });
}

async function read(stream: string, count: number): Promise<Entries> {
  const reply = (await reader.xreadgroup('GROUP', GROUP, role!, 'COUNT', count, 'BLOCK', 1000, 'STREAMS', stream, '>')) as [string, Entries][] | null;
  return reply?.[0]?.[1] ?? [];
}

function field(fields: string[], name: string): string {
  const i = fields.indexOf(name);
  return i >= 0 && i % 2 === 0 ? fields[i + 1]! : '';
}

async function hub(): Promise<void> {
  await group(IN);
  process.send?.('ready');
  while (!stopping) {
    const entries = await read(IN, 200);
    if (entries.length === 0) continue;
    const args: string[] = [];
    for (const [id, fields] of entries) args.push(id, `!r${field(fields, 'to').slice(2)}x0:bench.local`, field(fields, 'subject'), field(fields, 'body'));
    await redis.routeBatch(IN, DELIVER, ...args);
  }
}

async function worker(): Promise<void> {
  const pool = new Pool(homeserver, { connections: Number(concurrencyArg) + 1, keepAliveTimeout: 60_000 });
  const headers = { authorization: `Bearer ${HS_TOKEN}`, 'content-type': 'application/json' };
  const marks = `${prefix}:skeleton:begun`;
  let since = '';
  /** This tick's settles and begins, sent together: at once when a begin is in it, else at the end of the loop's turn. */
  let tick: { settles: string[]; begins: string[]; go: () => void; sent: Promise<void> } | undefined;
  const inTick = (kind: 'settles' | 'begins', id: string): Promise<void> => {
    if (!tick) {
      let go!: () => void;
      const settles: string[] = [];
      const begins: string[] = [];
      const sent = new Promise<void>((resolve) => (go = resolve)).then(async () => {
        if (tick?.sent === sent) tick = undefined;
        await redis.workerTick(DELIVER, marks, settles.length, ...settles, ...begins);
      });
      setImmediate(go);
      tick = { settles, begins, go, sent };
    }
    tick[kind].push(id);
    if (kind === 'begins') process.nextTick(tick.go);
    return tick.sent;
  };
  /** The sync in flight and when it was asked: a delivery that began before it was asked may use its answer. */
  let inFlight: { asked: number; done: Promise<void> } | undefined;
  const sync = async (): Promise<void> => {
    const res = await pool.request({ method: 'GET', path: `/_matrix/client/v3/sync?timeout=0${since ? `&since=${since}` : ''}`, headers });
    const answer = (await res.body.json()) as { next_batch: string };
    since = answer.next_batch;
  };
  const freshSince = (began: number): Promise<void> => {
    if (inFlight && inFlight.asked >= began) return inFlight.done;
    const asked = performance.now();
    const done = sync().finally(() => {
      if (inFlight?.done === done) inFlight = undefined;
    });
    inFlight = { asked, done };
    return done;
  };
  const render = (subject: string, body: string): string =>
    JSON.stringify(
      guarded
        ? messageContent!({ to: [], subject, body, format: 'html' }, 'm.text')
        : { msgtype: 'm.text', body: `${subject}\n\n${body}`, format: 'org.matrix.custom.html', formatted_body: `<b>${subject}</b><br>${body}` },
    );
  const send = async ([id, fields]: [string, string[]]): Promise<void> => {
    const began = performance.now();
    await inTick('begins', id);
    await freshSince(began);
    const content = render(field(fields, 'subject'), field(fields, 'body'));
    const res = await pool.request({ method: 'PUT', path: `/_matrix/client/v3/rooms/${encodeURIComponent(field(fields, 'room'))}/send/m.room.message/${id}`, headers, body: content });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`skeleton send ${id}: HTTP ${res.statusCode}`);
    // Not waited for: the room's next begin goes in the same call, after it.
    void inTick('settles', id).catch((err: Error) => {
      console.error(`skeleton settle ${id}: ${err.message}`);
      process.exit(1);
    });
  };
  /** Guarded: each room's deliveries in a chain, as the worker's target scheduler runs them (a begin after the previous settle, in its call). */
  const chains = new Map<string, Promise<void>>();
  const deliver = (entry: [string, string[]]): Promise<void> => {
    if (!guarded) return send(entry);
    const room = field(entry[1], 'room');
    const next = (chains.get(room) ?? Promise.resolve()).then(() => send(entry));
    chains.set(room, next);
    void next.finally(() => chains.get(room) === next && chains.delete(room));
    return next;
  };
  await group(DELIVER);
  await sync();
  process.send?.('ready');
  while (!stopping) for (const entry of await read(DELIVER, Number(concurrencyArg))) void deliver(entry);
}

await (role === 'hub' ? hub() : worker());
