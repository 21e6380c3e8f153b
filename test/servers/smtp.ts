/**
 * A real SMTP server for tests (the `smtp-server` package) on 127.0.0.1, a
 * port of its own: PLAIN/LOGIN authentication allowed only after STARTTLS
 * (with a certificate made at test time), every received message parsed with
 * mailparser, and knobs to make it fail the way real servers do.
 */
import type { Socket } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { testCertificates } from '../fixtures/tls/certificates.ts';

export interface ReceivedMail {
  /** MAIL FROM and RCPT TO as the client sent them. */
  envelope: { from: string; to: string[] };
  parsed: ParsedMail;
  /** The message exactly as received (headers and body). */
  raw: string;
  /** Whether the session was under TLS when the message came (STARTTLS or implicit TLS). */
  secure: boolean;
  /** The user that logged in. */
  user: string | undefined;
  /** The SMTP session (connection) it came over. */
  sessionId: string;
}

/** An SMTP reply the server gives instead of accepting: `{ code: 421, message: '4.3.2 try later' }`. */
export interface SmtpReply {
  code: number;
  message: string;
}

export interface SmtpServerOptions {
  /** Defaults: `hub` / `test-password-1`. */
  user?: string;
  password?: string;
  /** TLS from the first byte (`smtps://`) instead of STARTTLS (`smtp://`). Default false. */
  implicitTls?: boolean;
  /** Offer STARTTLS (and take a login only after it). Default true; false: no STARTTLS, plain-text login allowed. */
  starttls?: boolean;
}

export interface TestSmtpServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** PEM of the CA that signed the server's certificate: a client trusts it (email setting `tlsCa`). */
  readonly ca: string;
  /** `smtp://user:password@127.0.0.1:port` (`smtps://` with implicitTls), credentials overridable. */
  url(credentials?: { user?: string; password?: string }): string;
  /** Every message accepted so far, in order. */
  readonly messages: ReceivedMail[];
  /** TCP connections accepted so far (refused ones included). */
  readonly connections: number;
  /** Resolves with the messages once at least `count` have arrived. */
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  /** Answer the next `count` MAIL FROM commands with `reply` (default 421), then recover. */
  failNextMessages(count: number, reply?: SmtpReply): void;
  /** Greet the next `count` connections with `reply` (default 421) and hang up, then recover. */
  failNextConnections(count: number, reply?: SmtpReply): void;
  /** Refuse RCPT TO for this address (case-insensitive) with `reply` (default `550 5.1.1 unknown user <address>`). */
  rejectRecipient(address: string, reply?: SmtpReply): void;
  /** Cut the TCP connection at the next `count` MAIL FROM commands, without a reply. */
  dropNextMessages(count: number): void;
  /** Forget the messages, the counters and the knobs. */
  reset(): void;
  close(): Promise<void>;
}

const TRY_LATER: SmtpReply = { code: 421, message: '4.3.2 Service not available, try again later' };

function initialKnobs() {
  return {
    failMessages: { count: 0, reply: TRY_LATER },
    failConnections: { count: 0, reply: TRY_LATER },
    dropMessages: 0,
    rejected: new Map<string, SmtpReply>(),
  };
}

function smtpError(reply: SmtpReply): Error {
  return Object.assign(new Error(reply.message), { responseCode: reply.code });
}

export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const user = options.user ?? 'hub';
  const password = options.password ?? 'test-password-1';
  const { ca, cert, key } = await testCertificates();
  const messages: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  const sockets = new Map<string, Socket>();
  let knobs = initialKnobs();
  let connections = 0;

  const socketOf = (session: SMTPServerSession) => sockets.get(`${session.remoteAddress}:${session.remotePort}`);

  const server = new SMTPServer({
    secure: options.implicitTls ?? false,
    // Without STARTTLS, a plain-text login is allowed: the server an old relay is.
    disabledCommands: options.starttls === false ? ['STARTTLS'] : [],
    allowInsecureAuth: options.starttls === false,
    key,
    cert,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    closeTimeout: 500,
    onConnect(_session, callback) {
      if (knobs.failConnections.count > 0) {
        knobs.failConnections.count--;
        return callback(smtpError(knobs.failConnections.reply));
      }
      callback();
    },
    onAuth(auth, _session, callback) {
      if (auth.username === user && auth.password === password) return callback(null, { user });
      callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onMailFrom(_address, session, callback) {
      if (knobs.dropMessages > 0) {
        knobs.dropMessages--;
        socketOf(session)?.destroy();
        return;
      }
      if (knobs.failMessages.count > 0) {
        knobs.failMessages.count--;
        return callback(smtpError(knobs.failMessages.reply));
      }
      callback();
    },
    onRcptTo(address, _session, callback) {
      const reply = knobs.rejected.get(address.address.toLowerCase());
      callback(reply ? smtpError(reply) : null);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        simpleParser(raw).then(
          (parsed) => {
            const { mailFrom, rcptTo } = session.envelope;
            messages.push({
              envelope: { from: mailFrom ? mailFrom.address : '', to: rcptTo.map((r) => r.address) },
              parsed,
              raw: raw.toString('utf8'),
              secure: session.secure,
              user: session.user,
              sessionId: session.id,
            });
            for (const wake of waiters) wake();
            callback(null, `2.0.0 Ok: queued as test-${messages.length}`);
          },
          (err: Error) => callback(err),
        );
      });
    },
  });
  server.server.on('connection', (socket: Socket) => {
    connections++;
    const id = `${socket.remoteAddress}:${socket.remotePort}`;
    sockets.set(id, socket);
    socket.once('close', () => sockets.delete(id));
  });
  server.on('error', () => {
    // A client that hangs up mid-session (the drop knob does it on purpose) is no test failure.
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('SMTP test server has no TCP port');
  const port = address.port;

  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    ca,
    url(credentials = {}) {
      const scheme = options.implicitTls ? 'smtps' : 'smtp';
      const u = encodeURIComponent(credentials.user ?? user);
      const p = encodeURIComponent(credentials.password ?? password);
      return `${scheme}://${u}:${p}@127.0.0.1:${port}`;
    },
    messages,
    get connections() {
      return connections;
    },
    waitForMessages(count, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (messages.length < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(messages.slice());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`SMTP test server: ${messages.length} of ${count} messages after ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    failNextMessages(count, reply = TRY_LATER) {
      knobs.failMessages = { count, reply };
    },
    failNextConnections(count, reply = TRY_LATER) {
      knobs.failConnections = { count, reply };
    },
    rejectRecipient(address, reply = { code: 550, message: `5.1.1 unknown user <${address}>` }) {
      knobs.rejected.set(address.toLowerCase(), reply);
    },
    dropNextMessages(count) {
      knobs.dropMessages = count;
    },
    reset() {
      messages.length = 0;
      connections = 0;
      knobs = initialKnobs();
    },
    close() {
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
