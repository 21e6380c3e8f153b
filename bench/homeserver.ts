/**
 * A minimal, fast Matrix homeserver for the bench: only what the matrix plugin
 * calls (and login/join/whoami/versions for completeness), all in memory,
 * every accepted event timestamped on arrival.
 *
 * Run as a child with an IPC channel (bench/lib/homeserver-client.ts), so that
 * it does not share an event loop with the process that measures. Alone:
 * `npx node bench/homeserver.ts` prints its URL.
 *
 * Transactions are deduplicated per (access token, room, txn id), as the spec
 * asks: a repeated PUT answers the first event id and adds no event.
 * With `rateLimitEvery: n`, every n-th send is answered 429 M_LIMIT_EXCEEDED
 * with `retry_after_ms` (default 50).
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';

const TOKEN = process.env.HS_TOKEN ?? 'bench-access-token';
const USER_ID = process.env.HS_USER_ID ?? '@bench:bench.local';
const DEVICE_ID = process.env.HS_DEVICE_ID ?? 'BENCH';
const SERVER_NAME = USER_ID.slice(USER_ID.indexOf(':') + 1);
const PREFIX = '/_matrix/client/';
const SEND = /^\/_matrix\/client\/v3\/rooms\/([^/]+)\/send\/([^/]+)\/([^/]+)$/;
const STATE = /^\/_matrix\/client\/v3\/rooms\/([^/]+)\/state\/([^/]+)(?:\/([^/]*))?$/;
const JOIN = /^\/_matrix\/client\/v3\/(?:join\/([^/]+)|rooms\/([^/]+)\/join)$/;
const DIRECTORY = /^\/_matrix\/client\/v3\/directory\/room\/([^/]+)$/;
const SYNC = '/_matrix/client/v3/sync';
const MARK = /seq=(\d+) t=(\d+(?:\.\d+)?)/;

const now = () => performance.timeOrigin + performance.now();

// ---- state -------------------------------------------------------------
let rateLimitEvery = 0;
let retryAfterMs = 50;
let sends = 0;
let limited = 0;
let dedupeHits = 0;
let stateReads = 0;
let syncs = 0;
let eventCounter = 0;
let expect = 0;
/** (room, txn) → event id. */
let txns = new Map<string, string>();
/** Accepted events, in arrival order. */
let evTxn: string[] = [];
let evRoom: string[] = [];
let evSeq: number[] = [];
let evSent: number[] = [];
let evArrived: number[] = [];

function reset(options: { rateLimitEvery?: number; retryAfterMs?: number } = {}): void {
  rateLimitEvery = options.rateLimitEvery ?? 0;
  retryAfterMs = options.retryAfterMs ?? 50;
  sends = limited = dedupeHits = stateReads = syncs = 0;
  expect = 0;
  txns = new Map();
  evTxn = [];
  evRoom = [];
  evSeq = [];
  evSent = [];
  evArrived = [];
}

/**
 * `/sync` with nothing in it (no room here is ever encrypted or has news for
 * the bot): answered at once for an initial sync or `timeout=0`, else at the
 * end of the long poll.
 */
function sync(query: string, res: ServerResponse): void {
  const params = new URLSearchParams(query);
  const answer = () => reply(res, 200, `{"next_batch":"s${eventCounter}"}`);
  const timeout = Number(params.get('timeout') ?? 0);
  if (!params.get('since') || !(timeout > 0)) return answer();
  const timer = setTimeout(answer, Math.min(timeout, 30_000));
  res.on('close', () => clearTimeout(timer));
}

// ---- HTTP --------------------------------------------------------------
const JSON_HEADERS = { 'content-type': 'application/json' };

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, JSON_HEADERS);
  res.end(body);
}
const error = (res: ServerResponse, status: number, errcode: string, message: string, extra = '') =>
  reply(res, status, `{"errcode":"${errcode}","error":"${message}"${extra}}`);

function authed(req: IncomingMessage, res: ServerResponse): boolean {
  const auth = req.headers.authorization;
  if (auth === `Bearer ${TOKEN}`) return true;
  if (!auth) error(res, 401, 'M_MISSING_TOKEN', 'Missing access token');
  else error(res, 401, 'M_UNKNOWN_TOKEN', 'Unrecognised access token');
  return false;
}

function handle(req: IncomingMessage, res: ServerResponse, raw: string, arrived: number): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const method = req.method;
  if (!path.startsWith(PREFIX)) return error(res, 404, 'M_UNRECOGNIZED', 'Unrecognized request');

  if (method === 'PUT') {
    const m = SEND.exec(path);
    if (!m) return error(res, 404, 'M_UNRECOGNIZED', 'Unrecognized request');
    if (!authed(req, res)) return;
    sends += 1;
    if (rateLimitEvery > 0 && sends % rateLimitEvery === 0) {
      limited += 1;
      return error(res, 429, 'M_LIMIT_EXCEEDED', 'Too many requests', `,"retry_after_ms":${retryAfterMs}`);
    }
    const room = decodeURIComponent(m[1]!);
    const txn = decodeURIComponent(m[3]!);
    const key = `${room}\0${txn}`;
    const known = txns.get(key);
    if (known) {
      dedupeHits += 1;
      return reply(res, 200, `{"event_id":"${known}"}`);
    }
    let content: { body?: unknown };
    try {
      content = JSON.parse(raw) as { body?: unknown };
    } catch {
      return error(res, 400, 'M_NOT_JSON', 'Content not JSON.');
    }
    eventCounter += 1;
    const eventId = `$e${eventCounter}`;
    txns.set(key, eventId);
    const mark = typeof content.body === 'string' ? MARK.exec(content.body) : null;
    evTxn.push(txn);
    evRoom.push(room);
    evSeq.push(mark ? Number(mark[1]) : -1);
    evSent.push(mark ? Number(mark[2]) : Number.NaN);
    evArrived.push(arrived);
    reply(res, 200, `{"event_id":"${eventId}"}`);
    if (expect > 0 && evTxn.length >= expect) {
      expect = 0;
      process.send?.({ type: 'reached', at: arrived, events: evTxn.length });
    }
    return;
  }

  if (method === 'GET') {
    if (path === '/_matrix/client/versions') return reply(res, 200, '{"versions":["v1.1","v1.5","v1.10","v1.12"],"unstable_features":{}}');
    if (path === '/_matrix/client/v3/login') return reply(res, 200, '{"flows":[{"type":"m.login.password"}]}');
    if (!authed(req, res)) return;
    if (path === '/_matrix/client/v3/account/whoami') return reply(res, 200, JSON.stringify({ user_id: USER_ID, device_id: DEVICE_ID, is_guest: false }));
    if (STATE.test(path)) {
      stateReads += 1;
      return error(res, 404, 'M_NOT_FOUND', 'Event not found.');
    }
    if (path === SYNC) {
      syncs += 1;
      return sync(url.slice(q + 1), res);
    }
    const dir = DIRECTORY.exec(path);
    if (dir) {
      const alias = decodeURIComponent(dir[1]!);
      return reply(res, 200, JSON.stringify({ room_id: `!${alias.slice(1, alias.indexOf(':'))}:${SERVER_NAME}`, servers: [SERVER_NAME] }));
    }
    if (path.includes('/account_data/')) return error(res, 404, 'M_NOT_FOUND', 'Account data not found.');
    return error(res, 404, 'M_UNRECOGNIZED', 'Unrecognized request');
  }

  if (method === 'POST') {
    if (path === '/_matrix/client/v3/login') return reply(res, 200, JSON.stringify({ user_id: USER_ID, access_token: TOKEN, device_id: DEVICE_ID }));
    if (!authed(req, res)) return;
    const join = JOIN.exec(path);
    if (join) {
      const target = decodeURIComponent(join[1] ?? join[2]!);
      const roomId = target.startsWith('#') ? `!${target.slice(1, target.indexOf(':'))}:${SERVER_NAME}` : target;
      return reply(res, 200, JSON.stringify({ room_id: roomId }));
    }
    if (path === '/_matrix/client/v3/createRoom') return reply(res, 200, JSON.stringify({ room_id: `!dm${++eventCounter}:${SERVER_NAME}` }));
    return error(res, 404, 'M_UNRECOGNIZED', 'Unrecognized request');
  }
  if (method === 'PUT' || method === 'DELETE') return error(res, 404, 'M_UNRECOGNIZED', 'Unrecognized request');
  error(res, 405, 'M_UNRECOGNIZED', 'Unrecognized method');
}

const server = createServer({ keepAliveTimeout: 60_000, requestTimeout: 0 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const arrived = now();
    const raw = chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString();
    handle(req, res, raw, arrived);
  });
});
server.headersTimeout = 0;

// ---- control (IPC) -----------------------------------------------------
export interface HomeserverStats {
  events: number;
  distinctTxns: number;
  /** Repeated PUTs of a transaction already accepted (answered with the first event id). */
  dedupeHits: number;
  /** Sends answered 429. */
  limited: number;
  /** Reads of a room's state (the encryption check's GET) and `/sync` requests. */
  stateReads: number;
  syncs: number;
  sends: number;
  /** Events whose (room, seq) had been accepted before: a message delivered twice. */
  duplicateContent: number;
  firstArrival: number;
  lastArrival: number;
  /** Per event: arrival − the send time the producer put in the subject (ms). */
  latencies: number[];
  /** With `detail`: [seq, arrival] per event (seq from the subject; -1 when it has none). */
  arrivals?: Array<[number, number]>;
}

function stats(detail: boolean): HomeserverStats {
  const seen = new Set<string>();
  let duplicateContent = 0;
  const latencies: number[] = [];
  for (let i = 0; i < evTxn.length; i += 1) {
    if (evSeq[i]! >= 0) {
      const key = `${evRoom[i]}\0${evSeq[i]}`;
      if (seen.has(key)) duplicateContent += 1;
      seen.add(key);
    }
    if (Number.isFinite(evSent[i])) latencies.push(evArrived[i]! - evSent[i]!);
  }
  return {
    events: evTxn.length,
    distinctTxns: new Set(evTxn).size,
    dedupeHits,
    limited,
    stateReads,
    syncs,
    sends,
    duplicateContent,
    firstArrival: evArrived[0] ?? Number.NaN,
    lastArrival: evArrived.at(-1) ?? Number.NaN,
    latencies,
    ...(detail ? { arrivals: evSeq.map((seq, i): [number, number] => [seq, evArrived[i]!]) } : {}),
  };
}

export type ControlMessage =
  | { type: 'reset'; rateLimitEvery?: number; retryAfterMs?: number }
  | { type: 'expect'; events: number }
  | { type: 'stats'; detail?: boolean };

process.on('message', (msg: ControlMessage) => {
  if (msg.type === 'reset') {
    reset(msg);
    process.send?.({ type: 'ok' });
  } else if (msg.type === 'expect') {
    if (evTxn.length >= msg.events) process.send?.({ type: 'reached', at: evArrived.at(-1), events: evTxn.length });
    else expect = msg.events;
  } else if (msg.type === 'stats') {
    process.send?.({ type: 'stats', stats: stats(msg.detail ?? false) });
  }
});

process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
process.on('disconnect', () => process.exit(0));

server.listen(Number(process.env.HS_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  if (process.send) process.send({ type: 'ready', port });
  else process.stdout.write(`homeserver at http://127.0.0.1:${port} (token ${TOKEN}, user ${USER_ID})\n`);
});
