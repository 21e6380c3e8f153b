/**
 * A local X API v2 for tests: `POST /2/tweets`,
 * `POST /2/dm_conversations/with/:participant_id/messages` and
 * `GET /2/users/by/username/:username`, on node:http. Every request must carry
 * a valid OAuth 1.0a HMAC-SHA1 signature (401 otherwise); errors are problems
 * (`application/problem+json`) as X sends them; a post with the text of an
 * earlier one is refused (403); every response carries the
 * `x-rate-limit-*` headers, and a knob answers 429. Requests and responses
 * are checked against the operations' schemas (./schemas.ts); departures
 * land in `violations`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import twitterText from 'twitter-text';
import { OAuthVerifier } from './oauth.ts';
import { XSpec } from './spec.ts';
import { text } from 'node:stream/consumers';

export interface XCredentials {
  appKey: string;
  appSecret: string;
  accessToken: string;
  accessSecret: string;
}

/** The credentials the server accepts by default: the hub's app and account. */
export const X_TEST_CREDENTIALS: XCredentials = {
  appKey: 'hubAppKey0123456789',
  appSecret: 'hubAppSecret-TopSecret-0123456789abcdef',
  accessToken: '9999999999-hubAccessToken0123456789',
  accessSecret: 'hubAccessSecret-TopSecret-0123456789',
};

export interface XUser {
  id: string;
  username: string;
  name?: string;
  /** Whether the account lets the hub's account send it direct messages (default true). */
  acceptsDms?: boolean;
}

export const DEFAULT_X_USERS: XUser[] = [
  { id: '2244994945', username: 'XDevelopers', name: 'Developers' },
  { id: '1234567890', username: 'halfshot', name: 'Half-Shot' },
  { id: '1111111111', username: 'closed_dms', name: 'No DMs', acceptsDms: false },
];

export interface XServerOptions {
  credentials?: XCredentials;
  users?: XUser[];
}

export interface XPost { id: string; text: string }
export interface XDirectMessage { dmEventId: string; conversationId: string; participantId: string; text: string }
/** One call; `at` is when it was answered (`performance.now()`), to measure the gaps between retries. */
export interface XCall { method: string; path: string; status: number; at: number }

export interface XTestServer {
  /** The API origin, without `/2`: `TWITTER_API_URL`. */
  readonly url: string;
  readonly credentials: XCredentials;
  readonly posts: XPost[];
  readonly dms: XDirectMessage[];
  /** Every request, in order, with its status. */
  readonly calls: XCall[];
  /** Departures from the spec, by the client or by this server. */
  readonly violations: string[];
  /** How many times `GET /2/users/by/username/:username` was asked for this username (case-insensitive). */
  lookups(username: string): number;
  /** Answer 429 to the next `next` requests, or to every `every`-th from now; the window reopens `resetInSeconds` later (default 900; 0 or less: now, or a reset already past). `{}` clears. */
  rateLimit(options: { next?: number; every?: number; resetInSeconds?: number }): void;
  /** Answer the next requests with these HTTP statuses (5xx as X's internal-error / service-unavailable problems). */
  failNext(...statuses: number[]): void;
  close(): Promise<void>;
}

const ME = { id: '9999999999', username: 'notifyhub' };
const WINDOW_S = 900;
const WINDOW_LIMIT = 300;
const DM_MAX = 10_000;
const PROBLEMS = 'https://api.x.com/2/problems';

type Route = { method: 'GET' | 'POST'; spec: string; pattern: RegExp; names: string[] };
const ROUTES: Route[] = [
  { method: 'POST', spec: '/2/tweets', pattern: /^\/2\/tweets$/, names: [] },
  {
    method: 'POST',
    spec: '/2/dm_conversations/with/{participant_id}/messages',
    pattern: /^\/2\/dm_conversations\/with\/([^/]+)\/messages$/,
    names: ['participant_id'],
  },
  { method: 'GET', spec: '/2/users/by/username/{username}', pattern: /^\/2\/users\/by\/username\/([^/]+)$/, names: ['username'] },
];

/** `resetAt` (epoch seconds) marks a rate-limited answer: nothing remains until then. */
interface Answer { status: number; body: object; resetAt?: number }

let specSingleton: XSpec | undefined;

export async function startXServer(options: XServerOptions = {}): Promise<XTestServer> {
  const spec = (specSingleton ??= new XSpec());
  const credentials = options.credentials ?? X_TEST_CREDENTIALS;
  const verifier = new OAuthVerifier({
    consumers: new Map([[credentials.appKey, credentials.appSecret]]),
    tokens: new Map([[credentials.accessToken, credentials.accessSecret]]),
  });
  const users = options.users ?? DEFAULT_X_USERS;
  const posts: XPost[] = [];
  const dms: XDirectMessage[] = [];
  const calls: XCall[] = [];
  const violations: string[] = [];
  const lookupCounts = new Map<string, number>();
  const failures: number[] = [];
  let limit: { next: number; every: number; resetInSeconds: number; count: number } | undefined;
  let window = { start: Math.floor(Date.now() / 1000), used: 0 };
  let idSeq = 1_800_000_000_000_000_000n;

  const nextId = (): string => String(++idSeq);
  const problem = (status: number, title: string, detail: string, extra: object = {}, type = 'about:blank'): Answer => ({
    status,
    body: { type, title, detail, status, ...extra },
  });

  function rateLimitHeaders(now: number, forced?: number): Record<string, string> {
    if (now - window.start >= WINDOW_S) window = { start: now, used: 0 };
    window.used += 1;
    return {
      'x-rate-limit-limit': String(WINDOW_LIMIT),
      'x-rate-limit-remaining': String(forced === undefined ? Math.max(0, WINDOW_LIMIT - window.used) : 0),
      'x-rate-limit-reset': String(forced ?? window.start + WINDOW_S),
    };
  }

  function limited(): boolean {
    if (!limit) return false;
    limit.count += 1;
    if (limit.next > 0) {
      limit.next -= 1;
      return true;
    }
    return limit.every > 0 && limit.count % limit.every === 0;
  }

  function createPost(body: { text?: unknown }): Answer {
    const text = typeof body.text === 'string' ? body.text : '';
    if (!text) {
      return problem(400, 'Invalid Request', 'One or more parameters to your request was invalid.', { errors: [{ message: 'Post text is empty' }] }, `${PROBLEMS}/invalid-request`);
    }
    if (!twitterText.parseTweet(text).valid) {
      return problem(403, 'Forbidden', 'Your Tweet text is too long. For more information on how Twitter determines text length see https://github.com/twitter/twitter-text.');
    }
    if (posts.some((p) => p.text === text)) {
      return problem(403, 'Forbidden', 'You are not allowed to create a Tweet with duplicate content.');
    }
    const id = nextId();
    posts.push({ id, text });
    return { status: 201, body: { data: { id, text, edit_history_post_ids: [id] } } };
  }

  function sendDm(participantId: string, body: { text?: unknown }): Answer {
    const text = typeof body.text === 'string' ? body.text : '';
    const user = users.find((u) => u.id === participantId);
    if (!user) {
      return problem(404, 'Not Found Error', `Could not find user with participant_id: [${participantId}].`, {
        resource_type: 'user', resource_id: participantId, parameter: 'participant_id', value: participantId,
      }, `${PROBLEMS}/resource-not-found`);
    }
    if (user.acceptsDms === false) return problem(403, 'Forbidden', 'You cannot send messages to this user.');
    if ([...text].length > DM_MAX) {
      return problem(400, 'Invalid Request', 'One or more parameters to your request was invalid.', { errors: [{ message: `text: must be at most ${DM_MAX} characters` }] }, `${PROBLEMS}/invalid-request`);
    }
    const [a, b] = [ME.id, participantId].sort();
    const conversationId = `${a}-${b}`;
    const dmEventId = nextId();
    dms.push({ dmEventId, conversationId, participantId, text });
    return { status: 201, body: { data: { dm_conversation_id: conversationId, dm_event_id: dmEventId } } };
  }

  function lookup(username: string): Answer {
    const key = username.toLowerCase();
    lookupCounts.set(key, (lookupCounts.get(key) ?? 0) + 1);
    const user = users.find((u) => u.username.toLowerCase() === key);
    if (user) return { status: 200, body: { data: { id: user.id, name: user.name ?? user.username, username: user.username } } };
    // X reports a username it does not know as a partial error, with HTTP 200.
    return {
      status: 200,
      body: {
        errors: [{
          value: username, detail: `Could not find user with username: [${username}].`, title: 'Not Found Error',
          resource_type: 'user', parameter: 'username', resource_id: username, type: `${PROBLEMS}/resource-not-found`,
        }],
      },
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    const raw = await text(req);
    const route = ROUTES.find((r) => r.method === req.method && r.pattern.test(url.pathname));
    const reply = (answer: Answer): void => {
      const contentType = answer.status < 400 ? 'application/json' : 'application/problem+json';
      if (route) violations.push(...spec.checkResponse(route.method, route.spec, answer.status, contentType, answer.body));
      calls.push({ method: req.method ?? '', path: url.pathname, status: answer.status, at: performance.now() });
      const headers = rateLimitHeaders(Math.floor(Date.now() / 1000), answer.resetAt);
      res.writeHead(answer.status, { 'content-type': `${contentType}; charset=utf-8`, ...headers });
      res.end(JSON.stringify(answer.body));
    };
    if (!route) {
      violations.push(`${req.method} ${url.pathname}: not an endpoint this server implements`);
      return reply(problem(404, 'Not Found', 'Sorry, that page does not exist'));
    }

    const match = route.pattern.exec(url.pathname)!;
    const pathParams = Object.fromEntries(route.names.map((name, i) => [name, decodeURIComponent(match[i + 1]!)]));
    violations.push(...spec.checkParameters(route.method, route.spec, { path: pathParams, query: url.searchParams }));

    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const verdict = verifier.verify({
      method: req.method ?? 'GET',
      baseUri: `${url.protocol}//${url.host.toLowerCase()}${url.pathname}`,
      query: url.searchParams,
      form: contentType === 'application/x-www-form-urlencoded' ? new URLSearchParams(raw) : undefined,
      authorization: req.headers.authorization,
    });
    if (!verdict.ok) return reply(problem(401, 'Unauthorized', 'Unauthorized'));

    if (limited()) {
      const resetAt = Math.floor(Date.now() / 1000) + (limit?.resetInSeconds ?? WINDOW_S);
      return reply({ ...problem(429, 'Too Many Requests', 'Too Many Requests'), resetAt });
    }
    const failure = failures.shift();
    if (failure !== undefined) {
      return reply(failure === 500
        ? problem(500, 'Internal Error', 'An internal error occurred.', {}, `${PROBLEMS}/internal-error`)
        : problem(failure, 'Service Unavailable', 'Service Unavailable'));
    }

    if (route.method === 'GET') return reply(lookup(pathParams.username!));

    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw || 'null') as Record<string, unknown>;
    } catch {
      violations.push(`${route.spec}: the body is not JSON`);
      return reply(problem(400, 'Invalid Request', 'One or more parameters to your request was invalid.', {}, `${PROBLEMS}/invalid-request`));
    }
    const bodyProblems = spec.checkRequestBody(route.method, route.spec, contentType, body);
    if (bodyProblems.length > 0) {
      violations.push(...bodyProblems);
      return reply(problem(400, 'Invalid Request', 'One or more parameters to your request was invalid.', {
        errors: bodyProblems.map((message) => ({ message })),
      }, `${PROBLEMS}/invalid-request`));
    }
    return reply(route.names.length === 0 ? createPost(body) : sendDm(pathParams.participant_id!, body));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      violations.push(`server error: ${String(err)}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    credentials,
    posts,
    dms,
    calls,
    violations,
    lookups: (username) => lookupCounts.get(username.toLowerCase()) ?? 0,
    rateLimit({ next = 0, every = 0, resetInSeconds = WINDOW_S }) {
      limit = next || every ? { next, every, resetInSeconds, count: 0 } : undefined;
    },
    failNext(...statuses) {
      failures.push(...statuses);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
