import { z } from 'notification-hub/plugin-api';
import { parseStoreKey, STORE_KEY_FORMS } from './crypto/store-key.ts';
import { isUserId } from './targets.ts';

export const settingsSchema = z.object({
  /** The homeserver's client-server API base URL (`https://matrix.example.org`). */
  homeserver: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL like https://matrix.example.org' }),
  /** The bot's user id; must be the owner of the access token. */
  userId: z.string().refine(isUserId, { error: 'must be a Matrix user id like @bot:example.org' }),
  accessToken: z.string().min(1),
  deviceId: z.string().min(1).optional(),
  /** `m.text` pushes phones with the default push rules; `m.notice` is for low-priority traffic. */
  msgtype: z.enum(['m.text', 'm.notice']).default('m.text'),
  /**
   * End-to-end encryption: the folder of the crypto store (MATRIX_CRYPTO_STORE),
   * kept across restarts, and the key that encrypts it at rest
   * (MATRIX_CRYPTO_KEY, 32 bytes in hex or base64). Unset: encrypted rooms are refused.
   */
  cryptoStore: z.string().min(1).optional(),
  cryptoKey: z.string().min(1).transform((text, ctx) => {
    const key = parseStoreKey(text);
    if (typeof key !== 'string') return key;
    ctx.addIssue({ code: 'custom', message: key });
    return z.NEVER;
  }).optional(),
  /**
   * How long a "room is not encrypted" answer is trusted. 0 (the default): a
   * plaintext send waits for a /sync asked after it began (one answers every
   * send waiting), so that a room turned encrypted never gets plaintext; a few
   * seconds trade that window for that wait.
   */
  encryptionCheckTtlMs: z.coerce.number().int().min(0).default(0),
  /**
   * Watch read receipts, reactions and replies (a light `/sync`) so that an
   * `escalate` block stops nagging once a notification is read. The sync
   * runs only while some notification awaits an acknowledgement.
   */
  watch: z.boolean().default(true),
  /** How long one `/sync` long poll waits for news. */
  syncTimeoutMs: z.coerce.number().int().min(0).max(120_000).default(30_000),
  /** One worker process syncs at a time; another takes over when it has not renewed its lease for this long. */
  syncLeaseMs: z.coerce.number().int().min(1000).default(60_000),
}).refine((s) => s.syncLeaseMs > s.syncTimeoutMs, { error: 'syncLeaseMs must be longer than syncTimeoutMs', path: ['syncLeaseMs'] })
  .refine((s) => !s.cryptoStore || s.cryptoKey, { error: `MATRIX_CRYPTO_STORE needs MATRIX_CRYPTO_KEY (${STORE_KEY_FORMS})`, path: ['cryptoKey'] })
  .refine((s) => !s.cryptoStore || s.deviceId, { error: 'MATRIX_CRYPTO_STORE needs MATRIX_DEVICE_ID: the bot keeps one device for its whole life', path: ['deviceId'] });

export type MatrixSettings = z.output<typeof settingsSchema>;
