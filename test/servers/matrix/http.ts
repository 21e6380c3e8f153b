/**
 * The fake homeserver's HTTP side: routing, authentication as the spec has
 * it (`Authorization: Bearer`, or the deprecated `access_token` query
 * parameter), JSON bodies, fault injection and spec checking of everything
 * that goes in and out.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Faults, faultReply } from './faults.ts';
import { type Reply, type Route, routes } from './routes.ts';
import { check, checkEventContent, checkResponse, findOperation, type Operation } from './spec-check.ts';
import { type HomeserverState, MatrixFault, type Session } from './state.ts';
import { text } from 'node:stream/consumers';

/** One request; `at` is when it arrived (`performance.now()`), to measure the gaps between retries. */
export interface RequestRecord { method: string; path: string; status: number; at: number; userId?: string; query?: string }

interface Compiled { route: Route; op: Operation | undefined; segments: string[] }
const compiled: Compiled[] = routes.map((route) => ({
  route,
  op: findOperation(route.method, route.spec ?? route.path),
  segments: route.path.split('/'),
}));

function match(segments: string[], path: string[]): Record<string, string> | undefined {
  if (segments.length !== path.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, seg] of segments.entries()) {
    const actual = path[i] ?? '';
    if (seg.startsWith('{')) params[seg.slice(1, -1)] = decodeURIComponent(actual);
    else if (seg !== actual) return undefined;
  }
  return params;
}

export interface Hub {
  state: HomeserverState;
  faults: Faults;
  violations: string[];
  requests: RequestRecord[];
  held: Set<ServerResponse>;
}

export function handler(hub: Hub) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const raw = await text(req);
    const record: RequestRecord = { method, path: url.pathname, status: 0, at: performance.now(), ...(url.search ? { query: url.search } : {}) };
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    hub.requests.push(record);
    if (hub.faults.delayMs > 0) await sleep(hub.faults.delayMs);

    let found: { c: Compiled; params: Record<string, string> } | undefined;
    let pathKnown = false;
    try {
      for (const c of compiled) {
        const params = match(c.segments, url.pathname.split('/'));
        if (params && c.route.method === method) found = { c, params };
        pathKnown ||= params !== undefined;
      }
    } catch {
      return send(hub, res, record, undefined, { status: 400, body: { errcode: 'M_INVALID_PARAM', error: 'Bad path encoding' } });
    }
    if (!found) {
      const status = pathKnown ? 405 : 404;
      hub.violations.push(`${method} ${url.pathname}: ${pathKnown ? 'method not allowed' : 'unknown endpoint'} (${status} M_UNRECOGNIZED)`);
      return send(hub, res, record, undefined, { status, body: { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' } });
    }
    const { c, params } = found;
    const where = `${method} ${c.route.spec ?? c.route.path}`;
    const reply = (r: Reply) => send(hub, res, record, c.op, r, where);

    const fault = hub.faults.take(method, url.pathname);
    if (fault === 'timeout') {
      hub.held.add(res);
      res.on('close', () => hub.held.delete(res));
      return;
    }
    if (fault) return reply(faultReply(fault));

    const auth = authenticate(hub.state, req, url, c.op?.auth ?? c.route.auth ?? 'none');
    if ('status' in auth) return reply(auth);
    record.userId = auth.session?.userId;

    let body: Record<string, unknown> = {};
    if (method === 'POST' || method === 'PUT') {
      const parsed = parseJson(raw);
      if ('status' in parsed) return reply(parsed);
      body = parsed.body;
    }
    for (const [name, value] of Object.entries(params)) {
      const validate = c.op?.params.get(name);
      const problem = validate && check(validate, value, name);
      if (problem) hub.violations.push(`${where}: path parameter ${JSON.stringify(value)}: ${problem}`);
    }
    const invalid = c.op?.request && check(c.op.request, body);
    if (invalid) {
      hub.violations.push(`${where}: request ${invalid}`);
      return reply({ status: 400, body: { errcode: 'M_BAD_JSON', error: invalid } });
    }
    checkContents(hub, where, c.route, params, body);

    if (c.route.path.includes('/send/')) {
      const limited = hub.faults.limitSend();
      if (limited) return reply(limited);
    }
    try {
      const report = (problem: string) => hub.violations.push(`${where}: ${problem}`);
      reply(await c.route.handle(hub.state, { session: auth.session, params, query: url.searchParams, body, report, signal: gone.signal }));
    } catch (err) {
      if (!(err instanceof MatrixFault)) throw err;
      reply({ status: err.status, body: { errcode: err.errcode, error: err.message } });
    }
  };
}

/** Event contents a client sends (messages, `initial_state`) against their event schemas. */
function checkContents(hub: Hub, where: string, route: Route, params: Record<string, string>, body: Record<string, unknown>): void {
  const contents: Array<[string, unknown]> = route.path.includes('/send/')
    ? [[params.eventType ?? '', body]]
    : route.path.endsWith('/createRoom')
      ? ((body.initial_state ?? []) as Array<{ type: string; content: unknown }>).map((s) => [s.type, s.content])
      : [];
  for (const [type, content] of contents) {
    const problem = content && typeof content === 'object' ? checkEventContent(type, content as Record<string, unknown>) : undefined;
    if (problem) hub.violations.push(`${where}: ${type} content: ${problem}`);
  }
}

function authenticate(
  state: HomeserverState, req: IncomingMessage, url: URL, auth: Operation['auth'],
): { session: Session | undefined } | Reply {
  const header = req.headers.authorization;
  const token = header?.startsWith('Bearer ') ? header.slice(7) : url.searchParams.get('access_token') ?? undefined;
  if (auth === 'none') return { session: undefined };
  if (!token) {
    if (auth === 'optional') return { session: undefined };
    return { status: 401, body: { errcode: 'M_MISSING_TOKEN', error: 'Missing access token' } };
  }
  const session = state.sessions.get(token);
  if (!session) return { status: 401, body: { errcode: 'M_UNKNOWN_TOKEN', error: 'Unrecognised access token', soft_logout: false } };
  return { session };
}

function parseJson(raw: string): { body: Record<string, unknown> } | Reply {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { status: 400, body: { errcode: 'M_NOT_JSON', error: 'Content not JSON.' } };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { status: 400, body: { errcode: 'M_BAD_JSON', error: 'Content must be a JSON object.' } };
  }
  return { body: parsed as Record<string, unknown> };
}

function send(hub: Hub, res: ServerResponse, record: RequestRecord, op: Operation | undefined, reply: Reply, where = ''): void {
  if (res.destroyed) return; // the client went away (an aborted long poll)
  const problem = checkResponse(op, reply.status, reply.body);
  if (problem) hub.violations.push(`${where || record.path} → ${reply.status}: response ${problem}`);
  record.status = reply.status;
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...reply.headers });
  res.end(text);
}
