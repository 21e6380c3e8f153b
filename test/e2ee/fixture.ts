/**
 * What every end-to-end encryption test sets up: the spec-checking fake
 * homeserver, the bot's account, alice with a phone (a second client with its
 * own crypto), an encrypted room mapped to `#admins`, and the environment of a
 * hub with a crypto store; helpers to send, wait for an outcome and decrypt.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { eventually } from '../support/hub.ts';
import { matrixEnv } from '../support/e2e.ts';
import { type HubProcess, hubEnv, killAll, spawnHub } from '../support/processes.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';
import { type Receiver, startReceiver } from './receiver.ts';
import { fromPairs } from '../../core/redis/fields.ts';

/** An outcome event of `notify:events`: its fields, and when Redis wrote it (its stream id's time, ms). */
export interface Outcome {
  fields: Record<string, string | undefined>;
  at: number;
}

export interface E2ee {
  hs: Homeserver;
  redis: Redis;
  prefix: string;
  room: string;
  bot: { userId: string; accessToken: string; deviceId: string };
  alice: { userId: string };
  phone: Receiver;
  /** The hub's environment: MATRIX_CRYPTO_KEY is `key`. */
  env: Record<string, string>;
  /** `hub <args>` (`start` by default) with `env` and `extra`, once it logs that it started. */
  startHub(name: string, extra?: Record<string, string>, args?: string[]): Promise<HubProcess>;
  /** XADD one notification to `#admins`; its entry id. */
  send(body: string): Promise<string>;
  /** The settled outcome (sent or dead) of entry `id`. */
  outcome(id: string, timeoutMs?: number): Promise<Outcome>;
  /** The stored event `eventId`: encrypted by the bot, not holding `body` in clear, and each reader decrypts `body` from it. */
  assertDecrypts(eventId: string, body: string, readers: Receiver[]): Promise<void>;
  /** How many dead letters there are. */
  deadLetters(): Promise<number>;
  /** A second client of alice's (closed with the fixture). */
  newDevice(): Promise<Receiver>;
  close(): Promise<void>;
}

export async function startE2ee(name: string, key: string): Promise<E2ee> {
  const hs = await startHomeserver();
  const redis = new Redis(REDIS_URL);
  const dir = mkdtempSync(join(tmpdir(), `hub-${name}-`));
  const prefix = testPrefix(name);
  const bot = hs.registerUser('bot');
  const alice = hs.registerUser('alice');
  const receivers: Receiver[] = [];
  const newDevice = async () => {
    const device = await startReceiver(hs.url, alice.userId, 'pw-alice');
    receivers.push(device);
    return device;
  };
  const phone = await newDevice();
  const room = hs.createRoom(alice.userId, { encrypted: true, members: [bot.userId] });
  writeFileSync(join(dir, 'mapping.json'), JSON.stringify({ _id: 'ccs.notifications', mapping: { '#admins': { matrix: [room] } } }));
  writeFileSync(join(dir, 'hub.config.mjs'), `export default ${JSON.stringify({ channels: { matrix: { syncTimeoutMs: 1000, syncLeaseMs: 2000 } } })};\n`);
  const env = hubEnv(prefix, join(dir, 'mapping.json'), {
    HUB_CONFIG: join(dir, 'hub.config.mjs'),
    ...matrixEnv(hs, bot),
    MATRIX_CRYPTO_STORE: join(dir, 'crypto'),
    MATRIX_CRYPTO_KEY: key,
  });

  const outcome = async (id: string, timeoutMs = 60_000): Promise<Outcome> =>
    eventually(`the outcome of ${id}`, async () => {
      for (const [streamId, fields] of await redis.xrange(`${prefix}:events`, '-', '+')) {
        const event = fromPairs(fields);
        if (event.entry === id && (event.type === 'sent' || event.type === 'dead')) return { fields: event, at: Number(streamId.split('-')[0]) };
      }
      return undefined;
    }, timeoutMs);

  return {
    hs, redis, prefix, room, bot, alice, phone, env, outcome, newDevice,
    async startHub(label, extra = {}, args = ['start']) {
      const hub = spawnHub(args, { env: { ...env, ...extra }, name: label });
      await hub.waitFor(/"msg":"started"/);
      return hub;
    },
    async send(body) {
      return (await redis.xadd(`${prefix}:in`, '*', 'to', '#admins', 'body', body, 'format', 'text')) as string;
    },
    async assertDecrypts(eventId, body, readers) {
      assert.equal(hs.messages(room).length, 0, 'no m.room.message ever stored in the encrypted room');
      const event = hs.events(room).find((e) => e.event_id === eventId);
      assert.ok(event, `the homeserver holds ${eventId}`);
      assert.equal(event.type, 'm.room.encrypted');
      assert.equal(event.sender, bot.userId);
      assert.equal((event.content as { algorithm?: string }).algorithm, 'm.megolm.v1.aes-sha2');
      assert.ok(!JSON.stringify(event).includes(body), 'the stored event does not hold the text');
      for (const reader of readers) {
        const clear = await reader.decrypt(event as unknown as Record<string, unknown>);
        assert.equal(clear.body, body, `${reader.deviceId} reads it`);
      }
    },
    async deadLetters() {
      return redis.xlen(`${prefix}:dead`);
    },
    async close() {
      await killAll();
      for (const r of receivers) await r.close();
      await dropPrefix(prefix, redis);
      redis.disconnect();
      rmSync(dir, { recursive: true, force: true });
      await hs.close(); // throws on any spec violation
    },
  };
}
