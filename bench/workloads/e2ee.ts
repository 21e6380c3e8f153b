/**
 * Encrypted sends: the matrix plugin's crypto (Rust crypto, persistent store)
 * encrypting into one encrypted room with another client's device in it,
 * thousands of times, against the fake homeserver of the tests. The sender
 * runs in a process of its own (lib/e2ee-sender.ts, with the hub's Node
 * flags), as a matrix worker does, so that its memory is measured alone; the
 * homeserver and the receiving client stay in this process. Time per
 * encrypted send (a /members read, the encryption, the PUT), the heap after
 * each 500 sends (it must stay flat: indexeddbshim kept every finished
 * transaction until plugins/matrix/crypto/indexeddb.ts) and the sender's peak RSS.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startReceiver } from '../../test/e2ee/receiver.ts';
import { startHomeserver } from '../../test/servers/matrix/index.ts';
import { type BenchContext, ROOT } from '../lib/context.ts';
import type { SenderFigures, SenderTask } from '../lib/e2ee-sender.ts';
import { spawnNode } from '../lib/proc.ts';
import { type Workload, check, fmt } from '../lib/workload.ts';

const SENDS = 2000;
const WARMUP = 50;

export const e2ee: Workload = {
  name: 'e2ee',
  title: `Encrypted sends (${SENDS.toLocaleString('en-US')} into one encrypted room, the sender a process of its own)`,
  async run(ctx: BenchContext) {
    const hs = await startHomeserver();
    const dir = mkdtempSync(join(tmpdir(), 'bench-e2ee-'));
    const bot = hs.registerUser('bot');
    const alice = hs.registerUser('alice');
    const phone = await startReceiver(hs.url, alice.userId, 'pw-alice');
    const room = hs.createRoom(alice.userId, { encrypted: true, members: [bot.userId] });
    const task: SenderTask = {
      settings: { homeserver: hs.url, userId: bot.userId, accessToken: bot.accessToken, deviceId: bot.deviceId },
      room,
      storeDir: join(dir, 'crypto'),
      sends: SENDS,
      warmup: WARMUP,
    };
    const sender = spawnNode('e2ee-sender', {
      args: [join(ROOT, 'bench/lib/e2ee-sender.ts')],
      cwd: ROOT,
      env: { ...ctx.nodeEnv, E2EE_SENDER: JSON.stringify(task) },
      logDir: ctx.logDir,
      ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}),
      ipc: true,
      nodeArgs: [...ctx.nodeArgs, '--expose-gc'],
    });
    try {
      const figures = await new Promise<SenderFigures>((resolve, reject) => {
        sender.proc.once('message', (message) => resolve(message as SenderFigures));
        void sender.exited.then((code) => reject(new Error(`the encrypting sender exited (${code}) before it reported:\n${sender.tail()}`)));
      });
      await sender.exited;
      const { wallMs, cpuMs, before, after, marks, peakRssMb, startRssMb } = figures;
      const heapKbPerSend = ((after.heap - before.heap) * 1024) / SENDS;
      const last = hs.events(room).at(-1);
      const clear = last ? await phone.decrypt(last as unknown as Record<string, unknown>) : {};
      return {
        rows: [
          ['per encrypted send', `${fmt.ms(wallMs)} wall · ${fmt.ms(cpuMs)} CPU`],
          ['heap before → after', `${fmt.mb(before.heap)} → ${fmt.mb(after.heap)} (${heapKbPerSend.toFixed(1)} KB/send)`],
          ['sender RSS at start → before → after · peak', `${fmt.mb(startRssMb)} → ${fmt.mb(before.rss)} → ${fmt.mb(after.rss)} · ${fmt.mb(peakRssMb)} (a process of its own${ctx.nodeArgs.length ? `, ${ctx.nodeArgs.join(' ')}` : ''})`],
          ['the last one decrypts', String(clear.body === `notification ${WARMUP + SENDS - 1}`)],
        ],
        figures: { sends: SENDS, wallMs, cpuMs, before, after, marks, heapKbPerSend, peakRssMb, startRssMb },
        checks: [
          check('heap growth per encrypted send ≤ 5 KB', heapKbPerSend, '<=', 5, 'KB'),
          check('time per encrypted send ≤ 100 ms', wallMs, '<=', 100, 'ms'),
          check('sender peak RSS ≤ 200 MB after 2,000 encrypted sends', Math.round(peakRssMb * 10) / 10, '<=', 200, 'MB'),
        ],
      };
    } finally {
      await sender.stop();
      await phone.close();
      await hs.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
