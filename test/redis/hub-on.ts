/**
 * A whole hub in this process against a Redis the test started itself
 * (Sentinel, Cluster, TLS), configured only through the environment as a
 * container would be, with one channel and its log lines collected.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from '../../core/app.ts';
import type { HubConfigInput } from '../../core/config/schema.ts';
import { REPO } from '../support/e2e.ts';
import { collectLogs } from '../support/hub.ts';

export interface HubOn {
  app: App;
  logs: string[];
  /** The operations port. */
  port: number;
  stop(): Promise<void>;
}

export async function startHubOn(options: {
  env: Record<string, string>;
  channel: 'webhook' | 'matrix';
  mapping: unknown;
  config?: HubConfigInput;
  /** Wait for Redis (the default) or only start the operations port and the rest in the background. */
  waitForRedis?: boolean;
}): Promise<HubOn> {
  const dir = mkdtempSync(join(tmpdir(), 'hub-on-'));
  writeFileSync(join(dir, 'mapping.json'), JSON.stringify({ _id: 'ccs.notifications', mapping: options.mapping }));
  const { logs, logDestination } = collectLogs();
  const config: HubConfigInput = {
    logLevel: 'info',
    plugins: { dirs: [], modules: [join(REPO, 'plugins', options.channel, 'index.ts')] },
    http: { port: 0, host: '127.0.0.1' },
    ingress: { blockMs: 100 },
    ...options.config,
    delivery: { backoffBase: 50, backoffMax: 500, timeout: '5s', ...options.config?.delivery },
  };
  const app = await App.create({ config, env: { MAPPING_FILE: join(dir, 'mapping.json'), ...options.env }, logDestination });
  const started = app.start();
  if (options.waitForRedis ?? true) await started;
  else started.catch(() => {});
  while (!app.http) await new Promise((resolve) => setTimeout(resolve, 10));
  return {
    app,
    logs,
    port: app.http.port,
    async stop() {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
