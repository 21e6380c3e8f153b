/**
 * The delivery ceiling: the same PUT /send requests a matrix worker makes,
 * sent straight to the bench homeserver by an undici Pool with keep-alive,
 * `concurrency` requests in flight (as many connections), no logic around them.
 */
import { Pool } from 'undici';
import { HS_TOKEN } from './homeserver-client.ts';
import { wallNow } from './stats.ts';

/** Resolves with when the first send went, and the CPU this process spent per send (the client's whole cost, content built in). */
export async function rawHttpSends(options: { url: string; messages: number; rooms: number; concurrency: number; content: (i: number, sentAt: number) => string }): Promise<{ startedAt: number; cpuPerSendUs: number }> {
  const pool = new Pool(options.url, { connections: options.concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  const headers = { authorization: `Bearer ${HS_TOKEN}`, 'content-type': 'application/json' };
  let next = 0;
  const cpuBefore = process.cpuUsage();
  const startedAt = wallNow();
  const lane = async () => {
    for (let i = next++; i < options.messages; i = next++) {
      const room = encodeURIComponent(`!r${i % options.rooms}x0:bench.local`);
      const res = await pool.request({
        method: 'PUT',
        path: `/_matrix/client/v3/rooms/${room}/send/m.room.message/raw.${i}`,
        headers,
        body: options.content(i, wallNow()),
      });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`raw send ${i}: HTTP ${res.statusCode}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, lane));
  } finally {
    await pool.close();
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { startedAt, cpuPerSendUs: Math.round((cpu.user + cpu.system) / options.messages) };
}
