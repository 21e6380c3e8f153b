import { defineConfig } from './core/config/define-config.ts';

// The embedded defaults, spelled out. Environment variables override every
// key (README, "Configuration"); secrets are read only from the environment.
export default defineConfig({
  redisUrl: 'redis://127.0.0.1:6379',
  prefix: 'notify',
  mapping: { db: 'notifications', docId: 'ccs.notifications', file: './mapping.json' },
  ingress: { batchSize: 200, maxBodyBytes: 64 * 1024, dedupeWindow: '24h' },
  delivery: { concurrency: 64, maxAttempts: 8, backoffBase: '1s', backoffMax: '5m', rateLimitFloor: '1s', claimIdle: '30s' },
  http: { port: 9464 },
  plugins: { dirs: ['./plugins'] },
  channels: {
    matrix: { msgtype: 'm.text' },
  },
});
