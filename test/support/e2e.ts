/**
 * Small helpers shared by the end-to-end tests (test/e2e/): the matrix
 * channel's environment for a fake homeserver, waiting for a message's
 * outcomes, and plain HTTP reads of a hub's port.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { App } from '../../core/app.ts';
import type { HubConfigInput } from '../../core/config/schema.ts';
import type { Homeserver } from '../servers/matrix/index.ts';
import type { TestSmtpServer } from '../servers/smtp.ts';
import type { XTestServer } from '../servers/twitter/server.ts';
import { eventually, launchHub, type TestHub } from './hub.ts';
import { exitedWithOutput } from './processes.ts';

export interface MatrixBot {
  userId: string;
  accessToken: string;
  deviceId: string;
}

/** The matrix channel's settings, as a container would get them. */
export function matrixEnv(hs: Homeserver, bot: MatrixBot): Record<string, string> {
  return {
    MATRIX_HOMESERVER: hs.url,
    MATRIX_USER_ID: bot.userId,
    MATRIX_ACCESS_TOKEN: bot.accessToken,
    MATRIX_DEVICE_ID: bot.deviceId,
  };
}

/** The settings of every channel whose local peer is given, as a container would get them. */
export function peerEnv(peers: {
  matrix?: { hs: Homeserver; bot: MatrixBot };
  smtp?: TestSmtpServer;
  slack?: { url: string; token: string };
  x?: XTestServer;
}): Record<string, string> {
  const { matrix, smtp, slack, x } = peers;
  return {
    ...(matrix ? matrixEnv(matrix.hs, matrix.bot) : {}),
    ...(smtp ? { SMTP_URL: smtp.url(), EMAIL_FROM: 'Notification hub <hub@example.org>' } : {}),
    ...(slack ? { SLACK_TOKEN: slack.token, SLACK_API_URL: slack.url } : {}),
    ...(x
      ? {
          TWITTER_APP_KEY: x.credentials.appKey,
          TWITTER_APP_SECRET: x.credentials.appSecret,
          TWITTER_ACCESS_TOKEN: x.credentials.accessToken,
          TWITTER_ACCESS_SECRET: x.credentials.accessSecret,
          TWITTER_API_URL: x.url,
        }
      : {}),
  };
}

/** Matches `PUT …/rooms/<roomId>/send/…` however the room id is encoded in the path (for `failNext`). */
export function sendsTo(roomId: string): RegExp {
  const localpart = roomId.slice(1, roomId.indexOf(':'));
  return new RegExp(`^PUT /_matrix/client/v3/rooms/(!|%21)${localpart}(:|%3A)[^/]+/send/`, 'i');
}

export type Outcome = { id: string } & Record<string, string>;

/**
 * Wait until every one of `count` deliveries of message `entry` has a final
 * outcome (`sent` or `dead`) in `<prefix>:events`; resolves with those events.
 */
export async function settled(hub: TestHub, entry: string, count: number, timeoutMs = 30_000): Promise<Outcome[]> {
  return eventually(
    `${count} final outcome(s) of ${entry}`,
    async () => {
      const final = (await hub.read('events')).filter((e) => e.entry === entry && (e.type === 'sent' || e.type === 'dead'));
      return final.length >= count && final;
    },
    timeoutMs,
  );
}

/** Wait until nothing is left to do: no entry waiting or in progress in `in` and every `deliver:*` stream. */
export async function idle(hub: TestHub, timeoutMs = 30_000): Promise<void> {
  await eventually(
    'the hub to be idle',
    async () => {
      const streams = [`${hub.prefix}:in`, ...(await hub.redis.keys(`${hub.prefix}:deliver:*`))];
      for (const stream of streams) {
        // `deliver:<channel>:making:<entry>` marks (strings) match the pattern too.
        if ((await hub.redis.type(stream)) !== 'stream') continue;
        if ((await hub.redis.xlen(stream)) > 0) return false;
      }
      return true;
    },
    timeoutMs,
  );
}

/** GET a path of a hub's HTTP port: status and body. */
export async function httpGet(port: number, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

/** The command line, run as a user runs it: `node core/cli/main.ts <args>` in the repository. */
export const HUB_MAIN = join(import.meta.dirname, '../../core/cli/main.ts');
export const REPO = join(import.meta.dirname, '../..');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Only `env` (plus PATH and HOME): nothing of the test process's own environment leaks into the hub. */
function childEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env };
}

/** Run one command to its end (killed after `timeoutMs`, a guard against a hung command, not a speed limit); `main` is another entry point, such as the bin. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 120_000, main = HUB_MAIN): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [main, ...args], { cwd: REPO, env: childEnv(env), timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const failure = err as (Error & { code?: number | string; signal?: NodeJS.Signals | null; killed?: boolean }) | null;
      if (failure && typeof failure.code !== 'number' && !failure.signal) return reject(failure);
      resolve({ code: failure ? (typeof failure.code === 'number' ? failure.code : null) : 0, signal: failure?.signal ?? null, stdout, stderr });
    });
  });
}

export interface CliProcess {
  child: ChildProcess;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL if still running (for `after`). */
  kill(): Promise<void>;
}

/** Start a long-running command (`hub start`) in the background. */
export function spawnCli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [HUB_MAIN, ...args], { cwd: REPO, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = exitedWithOutput(child);
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface PrefixedHub {
  app: App;
  prefix: string;
  logs: string[];
  /** Stop the hub; its keys stay (another hub may take over the prefix). */
  stop(): Promise<void>;
}

/**
 * A hub on a prefix chosen by the caller (startTestHub always makes a new
 * one): for tests where a second hub takes over the keys of a first. The
 * caller removes the keys (`dropPrefix`) when done.
 */
export async function startHubOnPrefix(prefix: string, options: { config?: HubConfigInput; env?: Record<string, string> }): Promise<PrefixedHub> {
  const { app, logs } = await launchHub(prefix, options);
  return {
    app,
    prefix,
    logs,
    stop: async () => {
      await app.stop();
    },
  };
}
