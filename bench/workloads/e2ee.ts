/**
 * Encrypted sends: the matrix plugin's crypto (Rust crypto, persistent store)
 * encrypting into one encrypted room with another client's device in it,
 * thousands of times in this process, against the in-process fake homeserver.
 * Time per encrypted send (a /members read, the encryption, the PUT) and the
 * memory after each 500 sends: the heap must stay flat (indexeddbshim kept
 * every finished transaction until plugins/matrix/crypto/indexeddb.ts).
 * Not yet listed in bench/run.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { MatrixApi } from '../../plugins/matrix/client.ts';
import { RoomSync } from '../../plugins/matrix/room-sync.ts';
import { MatrixCrypto } from '../../plugins/matrix/crypto/engine.ts';
import type { MatrixSettings } from '../../plugins/matrix/settings.ts';
import { startReceiver } from '../../test/e2ee/receiver.ts';
import { startHomeserver } from '../../test/servers/matrix/index.ts';
import type { BenchContext } from '../lib/context.ts';
import { type Workload, check, fmt } from '../lib/workload.ts';

const SENDS = 2000;
const WARMUP = 50;

export const e2ee: Workload = {
  name: 'e2ee',
  title: `Encrypted sends (${SENDS.toLocaleString('en-US')} into one encrypted room, in process)`,
  async run(_ctx: BenchContext) {
    const hs = await startHomeserver();
    const dir = mkdtempSync(join(tmpdir(), 'bench-e2ee-'));
    const bot = hs.registerUser('bot');
    const alice = hs.registerUser('alice');
    const phone = await startReceiver(hs.url, alice.userId, 'pw-alice');
    const room = hs.createRoom(alice.userId, { encrypted: true, members: [bot.userId] });
    const settings = { homeserver: hs.url, userId: bot.userId, accessToken: bot.accessToken, deviceId: bot.deviceId } as MatrixSettings;
    const api = new MatrixApi(settings);
    const logger = pino({ level: 'warn' });
    const crypto = new MatrixCrypto(api, new RoomSync(api, { syncTimeoutMs: 1000 }, logger), { storeDir: join(dir, 'crypto'), storeKey: new Uint8Array(32).fill(1) }, logger);
    const signal = new AbortController().signal;
    const encryption = { algorithm: 'm.megolm.v1.aes-sha2' };
    const one = async (i: number) => {
      const sealed = await crypto.encrypt(room, encryption, { msgtype: 'm.text', body: `notification ${i}` }, signal);
      await api.send(room, `bench-${i}`, sealed.content, signal, sealed.type);
    };
    // The heap is only comparable after a full collection; the bench process runs without --expose-gc,
    // so the flag is set now and gc() taken from a fresh context (where it then exists).
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const mem = () => {
      gc();
      const m = process.memoryUsage();
      return { rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20 };
    };
    try {
      await crypto.started;
      if (crypto.state !== 'running') throw new Error(crypto.reason);
      for (let i = 0; i < WARMUP; i++) await one(i);
      const before = mem();
      const marks: Array<{ sends: number; rss: number; heap: number }> = [];
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < SENDS; i++) {
        await one(WARMUP + i);
        if ((i + 1) % 500 === 0) marks.push({ sends: i + 1, ...mem() });
      }
      const wallMs = (performance.now() - t0) / SENDS;
      const cpu = process.cpuUsage(cpu0);
      const cpuMs = (cpu.user + cpu.system) / 1000 / SENDS;
      const after = mem();
      const heapKbPerSend = ((after.heap - before.heap) * 1024) / SENDS;
      const last = hs.events(room).at(-1);
      const clear = last ? await phone.decrypt(last as unknown as Record<string, unknown>) : {};
      return {
        rows: [
          ['per encrypted send', `${fmt.ms(wallMs)} wall · ${fmt.ms(cpuMs)} CPU`],
          ['heap before → after', `${fmt.mb(before.heap)} → ${fmt.mb(after.heap)} (${heapKbPerSend.toFixed(1)} KB/send)`],
          ['RSS before → after', `${fmt.mb(before.rss)} → ${fmt.mb(after.rss)}`],
          ['the last one decrypts', String(clear.body === `notification ${WARMUP + SENDS - 1}`)],
        ],
        figures: { sends: SENDS, wallMs, cpuMs, before, after, marks, heapKbPerSend },
        checks: [
          check('heap growth per encrypted send', heapKbPerSend, '<=', 5, 'KB'),
          check('time per encrypted send', wallMs, '<=', 100, 'ms'),
        ],
      };
    } finally {
      await crypto.close();
      api.close();
      await phone.close();
      await hs.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
