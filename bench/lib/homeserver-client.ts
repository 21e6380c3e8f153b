/** The bench's side of bench/homeserver.ts: spawn it as a child and drive it over IPC. */
import { fileURLToPath } from 'node:url';
import type { ControlMessage, HomeserverStats } from '../homeserver.ts';
import { type Child, spawnNode } from './proc.ts';

export const HS_TOKEN = 'bench-access-token-0123456789';
export const HS_USER_ID = '@bench:bench.local';

export interface Homeserver {
  child: Child;
  url: string;
  reset(options?: { rateLimitEvery?: number; retryAfterMs?: number }): Promise<void>;
  /** Resolves when `events` events have arrived in all (with the arrival time of the last). */
  expect(events: number, timeoutMs: number): Promise<number>;
  stats(detail?: boolean): Promise<HomeserverStats>;
  stop(): Promise<void>;
}

type Reply = { type: 'ready'; port: number } | { type: 'ok' } | { type: 'reached'; at: number; events: number } | { type: 'stats'; stats: HomeserverStats };

export async function startHomeserver(options: { logDir: string; profileDir?: string; name?: string }): Promise<Homeserver> {
  const child = spawnNode(options.name ?? 'homeserver', {
    args: [fileURLToPath(new URL('../homeserver.ts', import.meta.url))],
    env: { HS_TOKEN, HS_USER_ID },
    logDir: options.logDir,
    ipc: true,
    ...(options.profileDir ? { profileDir: options.profileDir } : {}),
  });
  const next = <T extends Reply['type']>(type: T, timeoutMs = 30_000): Promise<Extract<Reply, { type: T }>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`homeserver: no "${type}" within ${timeoutMs} ms\n${child.tail()}`));
      }, timeoutMs);
      const onMessage = (msg: Reply) => {
        if (msg.type !== type) return;
        cleanup();
        resolve(msg as Extract<Reply, { type: T }>);
      };
      const onExit = () => {
        cleanup();
        reject(new Error(`homeserver exited while waiting for "${type}"\n${child.tail()}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        child.proc.off('message', onMessage);
        child.proc.off('exit', onExit);
      };
      child.proc.on('message', onMessage);
      child.proc.once('exit', onExit);
    });
  const send = (msg: ControlMessage) => child.proc.send(msg);
  const { port } = await next('ready');
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    async reset(opts = {}) {
      const ok = next('ok');
      send({ type: 'reset', ...opts });
      await ok;
    },
    async expect(events, timeoutMs) {
      const reached = next('reached', timeoutMs);
      send({ type: 'expect', events });
      return (await reached).at;
    },
    async stats(detail = false) {
      const reply = next('stats');
      send({ type: 'stats', detail });
      return (await reply).stats;
    },
    stop: () => child.stop(2000),
  };
}
