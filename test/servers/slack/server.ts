/**
 * A local Slack Web API for tests: `chat.postMessage` and `auth.test` on
 * node:http, as Slack answers them (HTTP 200 with `{ok:false,error}` for
 * errors; HTTP 429 with `Retry-After` and `{ok:false,error:'ratelimited'}`
 * when rate limited). Every request and response is checked against the
 * methods' schemas (./schemas.ts); what does not conform lands in
 * `violations`, which tests assert to be empty.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SlackSpec } from './spec.ts';
import { text } from 'node:stream/consumers';

/** The token the server accepts by default. */
export const SLACK_TEST_TOKEN = 'xoxe-1234567890-0987654321-hubtestsecret';

export type SlackTokenState = 'active' | 'revoked' | 'inactive';

export interface SlackChannel {
  /** `C…` public, `G…` private. */
  id: string;
  /** Without the `#`. */
  name: string;
  /** Whether the bot is a member (default true). */
  member?: boolean;
  archived?: boolean;
  /** A workspace setting forbids the bot to post here (`restricted_action`). */
  restricted?: boolean;
}

export interface SlackServerOptions {
  /** Tokens and their state; default `{ [SLACK_TEST_TOKEN]: 'active' }`. */
  tokens?: Record<string, SlackTokenState>;
  /** Default: see {@link DEFAULT_CHANNELS}. */
  channels?: SlackChannel[];
  /** User ids the bot can open a direct message with; default {@link DEFAULT_USERS}. */
  users?: string[];
  /** Longest `text` accepted before `msg_too_long` (default 40,000, Slack's documented limit). */
  maxTextLength?: number;
}

export interface ReceivedSlackMessage {
  /** The conversation id it was posted to (a `D…` id for a user). */
  channel: string;
  /** The `channel` argument as sent. */
  requested: string;
  text: string;
  ts: string;
  /** Every argument as received (form values are strings). */
  args: Record<string, unknown>;
  contentType: string;
  /** When the server took it (ms since the epoch; `ts` has only whole seconds of the clock). */
  receivedAt: number;
}

export interface SlackCall {
  method: string;
  status: number;
  error?: string;
  /** When it was answered (`performance.now()`), to measure the gaps between retries. */
  at: number;
}

/** An answer forced on the next call: a Slack error (`{ok:false,error}`, HTTP 200) or a bare HTTP status. */
export type SlackFailure = string | { status: number };

export interface SlackTestServer {
  /** The Web API base, ending with `/api/`: `SLACK_API_URL` / WebClient's `slackApiUrl`. */
  readonly url: string;
  readonly token: string;
  readonly messages: ReceivedSlackMessage[];
  /** Every request, in order, with the status and Slack error it got. */
  readonly calls: SlackCall[];
  /** Departures from the spec, by the client or by this server. */
  readonly violations: string[];
  /** Rate limit the next `next` calls, or every `every`-th call from now; `retryAfter` in seconds (default 30). `{}` clears. */
  rateLimit(options: { next?: number; every?: number; retryAfter?: number }): void;
  /** Answer the next calls with these failures, one each. */
  failNext(...failures: SlackFailure[]): void;
  addChannel(channel: SlackChannel): void;
  close(): Promise<void>;
}

export const DEFAULT_CHANNELS: SlackChannel[] = [
  { id: 'C024BE91L', name: 'general' },
  { id: 'C0OPS00001', name: 'ops' },
  { id: 'G0PRIVATE1', name: 'private-ops' },
  { id: 'C0NOTMEMB1', name: 'not-member', member: false },
  { id: 'C0ARCHIVE1', name: 'old-alerts', archived: true },
  { id: 'C0ANNOUNC1', name: 'announcements', restricted: true },
];
export const DEFAULT_USERS = ['U0WILL0001', 'W0GRACE001'];

const BOT_ID = 'B0HUBBOT01';
const BOT_USER_ID = 'U0HUBBOT01';
const TEAM_ID = 'T0HUBTEAM1';

let specSingleton: SlackSpec | undefined;

export async function startSlackServer(options: SlackServerOptions = {}): Promise<SlackTestServer> {
  const spec = (specSingleton ??= new SlackSpec());
  const tokens = new Map(Object.entries(options.tokens ?? { [SLACK_TEST_TOKEN]: 'active' }));
  const channels = new Map<string, SlackChannel>((options.channels ?? DEFAULT_CHANNELS).map((c) => [c.id, { ...c }]));
  const users = new Set(options.users ?? DEFAULT_USERS);
  const maxTextLength = options.maxTextLength ?? 40_000;
  const messages: ReceivedSlackMessage[] = [];
  const calls: SlackCall[] = [];
  const violations: string[] = [];
  const failures: SlackFailure[] = [];
  let limit: { next: number; every: number; retryAfter: number; count: number } | undefined;
  let seq = 0;

  const nextTs = (): string => `${Math.floor(Date.now() / 1000)}.${String(++seq % 1_000_000).padStart(6, '0')}`;

  function send(res: ServerResponse, method: string, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
    if (spec.operation(method)) violations.push(...spec.checkResponse(method, body));
    calls.push({ method, status, at: performance.now(), ...(typeof body.error === 'string' ? { error: body.error } : {}) });
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  }

  function rateLimited(): number | undefined {
    if (!limit) return undefined;
    limit.count += 1;
    if (limit.next > 0) {
      limit.next -= 1;
      return limit.retryAfter;
    }
    return limit.every > 0 && limit.count % limit.every === 0 ? limit.retryAfter : undefined;
  }

  function resolveChannel(requested: string): SlackChannel | { id: string; dm: true } | undefined {
    if (users.has(requested)) return { id: `D${requested.slice(1)}`, dm: true };
    if (channels.has(requested)) return channels.get(requested);
    const name = requested.replace(/^#/, '');
    return [...channels.values()].find((c) => c.name === name);
  }

  function postMessage(args: Record<string, unknown>, contentType: string): { error: string } | Record<string, unknown> {
    const requested = String(args.channel ?? '');
    const channel = resolveChannel(requested);
    if (!channel) return { error: 'channel_not_found' };
    if (!('dm' in channel)) {
      if (channel.archived) return { error: 'is_archived' };
      if (channel.restricted) return { error: 'restricted_action' };
      if (channel.member === false) return { error: 'not_in_channel' };
    }
    const text = typeof args.text === 'string' ? args.text : '';
    if (!text && args.blocks === undefined && args.attachments === undefined) return { error: 'no_text' };
    if (text.length > maxTextLength) return { error: 'msg_too_long' };
    const ts = nextTs();
    messages.push({ channel: channel.id, requested, text, ts, args, contentType, receivedAt: Date.now() });
    return {
      ok: true,
      channel: channel.id,
      ts,
      message: { type: 'message', subtype: 'bot_message', text, ts, bot_id: BOT_ID, username: 'notification-hub' },
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = url.pathname.replace(/^\/api\//, '');
    if (!url.pathname.startsWith('/api/') || !spec.operation(method)) {
      violations.push(`${req.method} ${url.pathname}: not a method this server implements`);
      calls.push({ method, status: 404, error: 'unknown_method', at: performance.now() });
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ ok: false, error: 'unknown_method' }));
      return;
    }

    const raw = await text(req);
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    let args: Record<string, unknown>;
    let form = true;
    if (req.method === 'GET') {
      args = Object.fromEntries(url.searchParams);
    } else if (contentType === 'application/x-www-form-urlencoded') {
      args = Object.fromEntries(new URLSearchParams(raw));
    } else if (contentType === 'application/json') {
      form = false;
      try {
        args = JSON.parse(raw || '{}') as Record<string, unknown>;
      } catch {
        send(res, method, 200, { ok: false, error: 'invalid_json' });
        return;
      }
    } else {
      violations.push(`${method}: content type ${JSON.stringify(contentType)} is not one the spec consumes`);
      send(res, method, 200, { ok: false, error: 'invalid_post_type' });
      return;
    }
    violations.push(...spec.checkRequest(method, args, form));

    const retryAfter = rateLimited();
    if (retryAfter !== undefined) {
      send(res, method, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(retryAfter) });
      return;
    }
    const failure = failures.shift();
    if (typeof failure === 'string') {
      send(res, method, 200, { ok: false, error: failure });
      return;
    }
    if (failure) {
      calls.push({ method, status: failure.status, at: performance.now() });
      res.writeHead(failure.status, { 'content-type': 'text/plain' });
      res.end(`HTTP ${failure.status}`);
      return;
    }

    // JSON bodies cannot carry the token: Slack reads it from the Authorization header only.
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const token = bearer ?? (form && typeof args.token === 'string' ? args.token : undefined);
    if (!token) return send(res, method, 200, { ok: false, error: 'not_authed' });
    const state = tokens.get(token);
    if (!state) return send(res, method, 200, { ok: false, error: 'invalid_auth' });
    if (state === 'revoked') return send(res, method, 200, { ok: false, error: 'token_revoked' });
    if (state === 'inactive') return send(res, method, 200, { ok: false, error: 'account_inactive' });

    if (method === 'auth.test') {
      send(res, method, 200, {
        ok: true, url: 'https://hub-test.slack.com/', team: 'Hub Test', user: 'notification-hub',
        team_id: TEAM_ID, user_id: BOT_USER_ID, bot_id: BOT_ID,
      });
      return;
    }
    const result = postMessage(args, contentType);
    send(res, method, 200, 'error' in result ? { ok: false, error: result.error } : result);
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
    url: `http://127.0.0.1:${port}/api/`,
    token: SLACK_TEST_TOKEN,
    messages,
    calls,
    violations,
    rateLimit({ next = 0, every = 0, retryAfter = 30 }) {
      limit = next || every ? { next, every, retryAfter, count: 0 } : undefined;
    },
    failNext(...more) {
      failures.push(...more);
    },
    addChannel(channel) {
      channels.set(channel.id, { ...channel });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
