import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { STATUS_CODES, createServer } from '../../http/node-http.ts';
import type { AddressInfo, Socket } from 'node:net';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubConfig } from '../../config/schema.ts';
import type { MappingStore } from '../../mapping/store.ts';
import type { Metrics } from '../../metrics.ts';
import type { Redactor } from '../../redactor.ts';
import { listen } from '../../http/listen.ts';
import { readBody } from '../../http/read-body.ts';
import { duplicateConnection } from '../../redis/connect.ts';
import type { Keys } from '../../redis/keys.ts';
import { type Built, type EntryContext, type Refusal, alertmanagerEntry, groupEntry, messageEntry } from './entries.ts';
import { Producers } from './producers.ts';
import { TEXT_FORMATS, contentType, headerOf, kib, routeOf, utf8Header } from './request.ts';

/** More headers than any client sends; a flood of small ones is refused, not silently cut. */
const MAX_HEADERS = 100;
const MAX_HEADER_BYTES = 16 * 1024;
const STOP_GRACE_MS = 2000;

type IngressDeps = { config: HubConfig; redis: Redis; keys: Keys; mappingStore: MappingStore; channelNames: ReadonlySet<string>; metrics: Metrics; redactor: Redactor };

/**
 * The HTTP ingress (CONTRACT §8): producers that speak HTTP POST a message,
 * the text for a group, or an Alertmanager notification; each accepted
 * request is one XADD to `notify:in`, answered `202 {"id"}` once Redis has
 * it. It is on when producer tokens are configured, in the process that runs
 * the hub.
 */
export class HttpIngress {
  readonly producers: Producers;
  #deps: IngressDeps;
  #logger: Logger;
  #server: Server | undefined;
  #writer: Redis | undefined;
  #stopped = false;

  constructor(deps: IngressDeps & { logger: Logger }) {
    this.#deps = deps;
    this.#logger = deps.logger.child({ component: 'http-ingress' });
    this.producers = new Producers(deps.config.httpIngress.tokens);
  }

  get enabled(): boolean {
    return this.producers.size > 0;
  }

  get port(): number | undefined {
    return (this.#server?.address() as AddressInfo | null)?.port;
  }

  async start(): Promise<void> {
    const { config, redis } = this.#deps;
    const { host, port, headersTimeout, requestTimeout, redisTimeout } = config.httpIngress;
    // Its own connection, failing at once while Redis is away: a queued XADD that went through after the
    // 503 would be a message accepted twice once the producer retried.
    this.#writer = duplicateConnection(redis, `${redis.options.connectionName ?? 'hub'}:http-ingress`, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: redisTimeout,
      enableAutoPipelining: true,
    });
    const server = createServer({
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: Math.min(headersTimeout, requestTimeout),
      requestTimeout,
      // Node checks the two timeouts this often (30 s by default, too coarse for a 1 s limit).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(Math.min(headersTimeout, requestTimeout) / 4))),
      keepAliveTimeout: 5000,
    });
    server.maxHeadersCount = MAX_HEADERS + 1;
    server.on('request', (req, res) => void this.#handle(req, res));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#clientError(err, socket));
    try {
      await listen(server, host, port, { serving: 'the HTTP ingress', hostVar: 'HUB_INGRESS_HOST', portVar: 'HUB_INGRESS_PORT' });
    } catch (err) {
      // Not listening: nothing will stop this writer but us.
      this.#writer.disconnect();
      throw err;
    }
    if (this.#stopped) {
      // stop() ran while it was opening.
      server.close();
      return;
    }
    this.#server = server;
    this.#logger.info({ host, port: this.port, producers: this.producers.size }, 'HTTP ingress listening');
  }

  /** No new requests; those in flight get up to 2 s to be answered, then their connections are cut. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const server = this.#server;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), STOP_GRACE_MS);
      await closed;
      clearTimeout(grace);
    }
    this.#writer?.disconnect();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let endpoint = 'unknown';
    let bodyRead = false;
    const answer = (status: number, body: object, headers: Record<string, string> = {}) => {
      this.#deps.metrics.ingressRequests.inc({ endpoint, status: String(status) });
      if (res.headersSent || res.destroyed) return;
      const text = this.#deps.redactor.redact(JSON.stringify(body));
      // A body left unread would be read and thrown away to keep the connection: close it instead.
      const close: Record<string, string> = bodyRead || req.complete ? {} : { connection: 'close' };
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...close, ...headers });
      res.end(text);
    };
    const refuse = (r: Refusal, headers?: Record<string, string>) => {
      this.#logger.debug({ endpoint, status: r.status, field: r.field, reason: r.error }, 'HTTP ingress refused a request');
      answer(r.status, { error: r.error, ...(r.field ? { field: r.field } : {}) }, headers);
    };
    try {
      const route = routeOf(req.url ?? '/');
      if ('status' in route) return refuse(route, route.status === 405 ? { allow: 'POST' } : {});
      endpoint = route.endpoint;
      if (req.method !== 'POST') return refuse({ status: 405, error: `${req.method} is not allowed here; send a POST` }, { allow: 'POST' });
      if (req.rawHeaders.length / 2 > MAX_HEADERS) return refuse({ status: 431, error: `the request headers are too large (at most ${MAX_HEADERS} headers of ${MAX_HEADER_BYTES / 1024} KiB in all)` }, { connection: 'close' });
      const producer = this.producers.authenticate(req.headers.authorization);
      if (!producer) return refuse({ status: 401, error: 'no valid producer token: send "Authorization: Bearer <token>" with a token from HUB_INGRESS_TOKENS' }, { 'www-authenticate': 'Bearer' });
      if ('group' in route && !producer.mayAddress(route.group)) return refuse({ status: 403, error: `producer ${producer.name} may not address ${route.group}; its token lists the groups it may`, field: 'to' });
      const wait = producer.throttle();
      if (wait > 0) return refuse({ status: 429, error: `producer ${producer.name} is over its rate; retry in ${wait} s` }, { 'retry-after': String(wait) });
      const type = contentType(req.headers['content-type']);
      const format = TEXT_FORMATS.get(type.media);
      const wantsJson = route.endpoint !== 'groups';
      if (type.charset && !/^(utf-?8|us-ascii)$/i.test(type.charset)) return refuse({ status: 415, error: `charset ${type.charset.slice(0, 40)} is not supported; send UTF-8` });
      if (wantsJson && type.media !== 'application/json' && type.media !== '') return refuse({ status: 415, error: `Content-Type ${type.media.slice(0, 60)} is not accepted here; send application/json` });
      if (!wantsJson && type.media !== '' && !format) return refuse({ status: 415, error: `Content-Type ${type.media.slice(0, 60)} is not accepted here; send text/plain, text/markdown or text/html` });

      const body = await readBody(req, this.#deps.config.httpIngress.maxRequestBytes);
      if (body === 'too large') return refuse({ status: 413, error: `the body is over the ${kib(this.#deps.config.httpIngress.maxRequestBytes)} limit of a request` }, { connection: 'close' });
      if (body === 'aborted') return;
      bodyRead = true;

      const ctx: EntryContext = {
        producer,
        limits: { maxBodyBytes: this.#deps.config.ingress.maxBodyBytes, maxGroups: this.#deps.config.ingress.maxGroups, channels: this.#deps.channelNames },
        mappingStore: this.#deps.mappingStore,
        idempotencyKey: headerOf(req, 'idempotency-key'),
      };
      const built: Built =
        route.endpoint === 'messages'
          ? messageEntry(body, ctx)
          : route.endpoint === 'groups'
            ? groupEntry(route.group, body, format ?? 'text', utf8Header(headerOf(req, 'title')), ctx)
            : alertmanagerEntry(route.group, body, ctx);
      if (!built.ok) return refuse(built);

      const id = await this.#append(built.fields);
      if (typeof id !== 'string') return refuse(id, { 'retry-after': '1' });
      return answer(202, { id });
    } catch (err) {
      this.#logger.error({ endpoint, err: this.#deps.redactor.redact((err as Error).message) }, 'HTTP ingress request failed');
      return answer(500, { error: 'internal error; the request was not accepted, retry it' });
    }
  }

  /** One XADD; a refusal when Redis cannot take it now (nothing was accepted). */
  async #append(fields: Record<string, string>): Promise<string | Refusal> {
    const writer = this.#writer!;
    const unavailable = (why: string): Refusal => ({ status: 503, error: `Redis cannot take the message now (${why}); nothing was accepted: retry` });
    if (writer.status !== 'ready') return unavailable('not connected');
    try {
      return (await writer.xadd(this.#deps.keys.in, '*', ...Object.entries(fields).flat())) as string;
    } catch (err) {
      const reason = this.#deps.redactor.redact((err as Error).message).slice(0, 200);
      this.#logger.warn({ reason }, 'HTTP ingress could not append to the ingress stream');
      // Sent but not confirmed: Redis may have it after all. The producer's Idempotency-Key makes the retry safe.
      if (/timed out/i.test(reason)) {
        return { status: 503, error: `Redis did not confirm the message within ${this.#deps.config.httpIngress.redisTimeout} ms; retry it with the same Idempotency-Key, so that it is delivered once` };
      }
      return unavailable(reason);
    }
  }

  /** What Node refuses before a request reaches the handler: answered in JSON like the rest. */
  #clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code?.startsWith('HPE_') ? 400 : 0;
    const reasons: Record<number, string> = {
      431: `the request headers are too large (at most ${MAX_HEADERS} headers of ${MAX_HEADER_BYTES / 1024} KiB in all)`,
      408: 'the request was not received in time; send the whole request at once',
      400: 'the request is not valid HTTP/1.1',
    };
    this.#deps.metrics.ingressRequests.inc({ endpoint: 'unknown', status: String(status || 'reset') });
    const pending = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (status && socket.writable && !pending?.headersSent) {
      const body = JSON.stringify({ error: reasons[status] });
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    }
    socket.destroySoon();
  }
}
