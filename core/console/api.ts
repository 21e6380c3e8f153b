/** The console's JSON API: read-only views, and the actions (replay, purge, mapping save) behind sign-in and CSRF checks. */
import type { Cradle } from '../container.ts';
import { type Letter, replayLetters } from '../journal/replay.ts';
import { keptDocument, keptRevisions } from '../mapping/revisions.ts';
import { validateMapping } from '../mapping/validate.ts';
import { messageStatus } from '../status/message.ts';
import { overview } from '../status/streams.ts';
import { filterOf, lettersById, listLetters, selectLetters } from './dead-letters.ts';
import { FlowHistory } from './flow.ts';
import { ClientError } from './http.ts';
import { diffDocuments, mappingTable } from './mapping-view.ts';

const LIST_LIMIT = 200;
const ENTRY_ID = /^\d{1,20}-\d{1,20}$/;
const MAX_ID_PART = 2n ** 64n - 1n;
/** A stream entry id Redis takes: both parts fit in 64 bits. */
const isEntryId = (id: string) => ENTRY_ID.test(id) && id.split('-').every((part) => BigInt(part) <= MAX_ID_PART);

type Deps = Pick<Cradle, 'redis' | 'keys' | 'channelNames' | 'mappingStore' | 'targetRules' | 'logger'>;

export function consoleApi(deps: Deps) {
  const { redis, keys, mappingStore } = deps;
  const flow = new FlowHistory(redis, keys);

  const letterView = (letter: Letter) => ({ id: letter.id, at: new Date(Number(letter.id.split('-')[0])).toISOString(), ...letter.fields });

  /** The letters an action names: `ids`, or every one a `filter` matches. */
  async function* chosen(body: Record<string, unknown>): AsyncGenerator<Letter[]> {
    if (Array.isArray(body.ids)) {
      const ids = body.ids.filter((id): id is string => typeof id === 'string' && isEntryId(id));
      if (ids.length !== body.ids.length || ids.length === 0) throw new ClientError(400, 'ids: expected dead letter ids such as 1717171717171-0');
      yield await lettersById(redis, keys, ids);
    } else if (body.filter !== null && typeof body.filter === 'object') {
      yield* selectLetters(redis, keys, parseFilter(body.filter as Record<string, unknown>));
    } else throw new ClientError(400, 'name the dead letters (ids) or a filter');
  }

  return {
    async flow() {
      const [streams, series] = await Promise.all([overview(redis, keys, deps.channelNames), flow.series()]);
      return { streams, series, mapping: { revision: mappingStore.current?.revision, problem: mappingStore.lastError } };
    },

    async trace(id: string) {
      if (id === '' || id.length > 500) throw new ClientError(400, 'give an entry id (1717171717171-0) or the producer\'s id');
      const status = await messageStatus(redis, keys, id);
      if (!status) throw new ClientError(404, `no message ${JSON.stringify(id)}: neither an entry id nor a producer id the hub remembers`);
      return status;
    },

    async deadLetters(query: URLSearchParams) {
      const { letters, matched, complete } = await listLetters(redis, keys, parseFilter(query), LIST_LIMIT);
      return { letters: letters.map(letterView), matched, complete, channels: [...deps.channelNames, 'ingress'] };
    },

    async replay(body: Record<string, unknown>) {
      const results = [];
      for await (const letters of chosen(body)) results.push(...(await replayLetters(redis, keys, letters)));
      const replayed = results.filter((r) => r.entry);
      deps.logger.info({ replayed: replayed.length, asked: results.length }, 'console: dead letters replayed');
      return { replayed: replayed.length, skipped: results.length - replayed.length, results };
    },

    async purge(body: Record<string, unknown>) {
      let purged = 0;
      for await (const letters of chosen(body)) if (letters.length) purged += await redis.xdel(keys.dead, ...letters.map((l) => l.id));
      deps.logger.info({ purged }, 'console: dead letters purged');
      return { purged };
    },

    async mapping() {
      const current = await mappingStore.source.get();
      return {
        inForce: mappingStore.current?.revision,
        problem: mappingStore.lastError,
        source: mappingStore.source.description,
        table: mappingTable(mappingStore.current),
        revision: current?.revision,
        document: current?.document ?? null,
      };
    },

    check(body: Record<string, unknown>) {
      const document = parseDocument(body.text);
      const result = validateMapping(document, 'check', deps.targetRules);
      return result.ok ? { ok: true, groups: result.mapping.groups.size } : { ok: false, errors: result.errors.map(splitError) };
    },

    async save(body: Record<string, unknown>) {
      const document = parseDocument(body.text);
      const result = validateMapping(document, 'check', deps.targetRules);
      if (!result.ok) return { status: 422, body: { ok: false, errors: result.errors.map(splitError) } };
      const current = await mappingStore.source.get();
      if (typeof body.base === 'string' && current && current.revision !== body.base) {
        throw new ClientError(409, `the mapping changed since you opened it (now revision ${current.revision}); reload it and make your change again`);
      }
      const revision = await mappingStore.source.put(document);
      deps.logger.info({ revision }, 'console: mapping saved');
      return { status: 200, body: { ok: true, revision } };
    },

    async revisions() {
      return (await keptRevisions(redis, keys)).map(({ revision, at }) => ({ revision, at: new Date(at).toISOString() }));
    },

    async diff(from: string, to: string) {
      const find = async (revision: string) => {
        const document = await keptDocument(redis, keys, revision);
        if (document !== undefined) return document;
        throw new ClientError(404, `revision ${JSON.stringify(revision)} is not among the last ${(await keptRevisions(redis, keys)).length} kept`);
      };
      return { from, to, changes: diffDocuments(await find(from), await find(to)) };
    },
  };
}

function parseFilter(query: URLSearchParams | Record<string, unknown>) {
  try {
    return filterOf(query);
  } catch (err) {
    throw new ClientError(400, (err as Error).message);
  }
}

function parseDocument(text: unknown): Record<string, unknown> {
  if (typeof text !== 'string') throw new ClientError(400, 'text: expected the mapping document as JSON text');
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    throw new ClientError(422, `not valid JSON: ${(err as Error).message}`);
  }
  if (document === null || typeof document !== 'object' || Array.isArray(document)) throw new ClientError(422, '(document): not a JSON object');
  return document as Record<string, unknown>;
}

/** `mapping["#ops"].matrix[1]: not a room id` → its path and its message, for the page to show at the path. */
function splitError(error: string): { path: string; message: string } {
  const at = error.indexOf(': ');
  return at < 0 ? { path: '', message: error } : { path: error.slice(0, at), message: error.slice(at + 2) };
}
