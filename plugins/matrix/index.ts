/**
 * The matrix channel: notifications into rooms (`!room:server`), aliases
 * (`#alias:server`, resolved) and people (`@user:server`, a direct room made
 * once and reused), through the client-server API (client.ts). Encrypted rooms get encrypted
 * events when MATRIX_CRYPTO_STORE is set (crypto/, matrix-js-sdk's Rust crypto), and are refused otherwise. It watches read receipts, reactions and
 * replies (a light /sync) for the messages an escalation waits on.
 */
import { PLUGIN_API_VERSION, definePlugin, loadSender } from 'notification-hub/plugin-api';
import { settingsSchema } from './settings.ts';
import { targetProblem } from './targets.ts';

export default definePlugin({
  name: 'matrix',
  apiVersion: PLUGIN_API_VERSION,
  description: 'Matrix rooms, aliases and direct messages; m.text by default, sanitized HTML; end-to-end encryption with MATRIX_CRYPTO_STORE',
  settings: {
    schema: settingsSchema,
    env: {
      homeserver: 'MATRIX_HOMESERVER',
      userId: 'MATRIX_USER_ID',
      accessToken: 'MATRIX_ACCESS_TOKEN',
      deviceId: 'MATRIX_DEVICE_ID',
      cryptoStore: 'MATRIX_CRYPTO_STORE',
      cryptoKey: 'MATRIX_CRYPTO_KEY',
    },
    secrets: ['accessToken', 'cryptoKey'],
  },
  validateTarget: targetProblem,
  // Matrix ids are case-sensitive (server names included): only stray whitespace is noise.
  normalizeTarget: (target) => target.trim(),
  createSender: loadSender(import.meta.url, './sender', 'createMatrixSender'),
  // Read receipts, reactions and replies: what stops an `escalate` block from nagging.
  // Imported when a worker starts it: the hub and the CLI never load it.
  watch: async (ctx) => (await import('./watcher.ts')).createMatrixWatcher(ctx),
});
