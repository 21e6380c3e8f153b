/**
 * The sending side of the encrypted-sends workload (bench/workloads/e2ee.ts)
 * in a process of its own, as a matrix worker runs it, so that the memory it
 * reports is its own: the homeserver and the receiving client stay in the
 * bench's process. Reads its task from E2EE_SENDER (JSON), answers with one
 * IPC message, then exits. Run with --expose-gc: the heap is only comparable
 * after a full collection.
 */
import { pino } from 'pino';
import { MatrixApi } from '../../plugins/matrix/client.ts';
import { MatrixCrypto } from '../../plugins/matrix/crypto/engine.ts';
import { RoomSync } from '../../plugins/matrix/room-sync.ts';
import type { MatrixSettings } from '../../plugins/matrix/settings.ts';

export interface SenderTask {
  settings: Pick<MatrixSettings, 'homeserver' | 'userId' | 'accessToken' | 'deviceId'>;
  room: string;
  storeDir: string;
  sends: number;
  warmup: number;
}

export interface SenderFigures {
  wallMs: number;
  cpuMs: number;
  before: Memory;
  after: Memory;
  marks: Array<{ sends: number } & Memory>;
  /** The process's peak resident set, MB. */
  peakRssMb: number;
  /** RSS at start, before the crypto was loaded, MB. */
  startRssMb: number;
}

interface Memory {
  rss: number;
  heap: number;
}

const startRssMb = process.memoryUsage().rss / 2 ** 20;
const task = JSON.parse(process.env.E2EE_SENDER ?? '{}') as SenderTask;
const gc = globalThis.gc;
if (!gc || !process.send) throw new Error('run with --expose-gc, as a child with an IPC channel');

const api = new MatrixApi(task.settings as MatrixSettings);
const logger = pino({ level: 'warn' });
const crypto = new MatrixCrypto(api, new RoomSync(api, { syncTimeoutMs: 1000 }, logger), { storeDir: task.storeDir, storeKey: new Uint8Array(32).fill(1) }, logger);
const signal = new AbortController().signal;
const encryption = { algorithm: 'm.megolm.v1.aes-sha2' };
const one = async (i: number) => {
  const sealed = await crypto.encrypt(task.room, encryption, { msgtype: 'm.text', body: `notification ${i}` }, signal);
  await api.send(task.room, `bench-${i}`, sealed.content, signal, sealed.type);
};
const mem = (): Memory => {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20 };
};

try {
  await crypto.started;
  if (crypto.state !== 'running') throw new Error(crypto.reason);
  for (let i = 0; i < task.warmup; i++) await one(i);
  const before = mem();
  const marks: SenderFigures['marks'] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < task.sends; i++) {
    await one(task.warmup + i);
    if ((i + 1) % 500 === 0) marks.push({ sends: i + 1, ...mem() });
  }
  const wallMs = (performance.now() - t0) / task.sends;
  const cpu = process.cpuUsage(cpu0);
  const figures: SenderFigures = {
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000 / task.sends,
    before,
    after: mem(),
    marks,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    startRssMb,
  };
  process.send(figures);
} finally {
  await crypto.close();
  api.close();
  process.disconnect?.();
}
