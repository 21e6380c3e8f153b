/**
 * A real Prometheus Alertmanager (Debian's `prometheus-alertmanager`, which
 * .ci/run installs) on free loopback ports, with short timings, its webhook
 * receiver pointed at a URL; alone or clustered with others.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './free-port.ts';

export const ALERTMANAGER_BIN = process.env.ALERTMANAGER_BIN ?? '/usr/bin/prometheus-alertmanager';

export interface TestAlertmanager {
  url: string;
  clusterAddress: string;
  /** What it logged, for a failing test's message. */
  output(): string;
  /** POST /api/v2/alerts: what Prometheus does at every evaluation. */
  pushAlerts(alerts: Array<Record<string, unknown>>): Promise<void>;
  close(): Promise<void>;
}

const everyChild = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of everyChild) child.kill('SIGKILL');
});

/**
 * `peers`: cluster with these (an empty list: the first of a cluster). `slowGossip`: peers hear of each
 * other's notifications only after a second or more, as across a busy network, so that both send.
 */
export async function startAlertmanager(options: { webhookUrl: string; token: string; peers?: string[]; peerTimeout?: string; slowGossip?: boolean }): Promise<TestAlertmanager> {
  if (!existsSync(ALERTMANAGER_BIN)) {
    throw new Error(`${ALERTMANAGER_BIN} is missing: install it with \`apt-get install -y prometheus-alertmanager\` (.ci/run does), or set ALERTMANAGER_BIN`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'hub-alertmanager-'));
  const [webPort, clusterPort] = [await freePort(), await freePort()];
  const config = join(dir, 'alertmanager.yml');
  const tokenFile = join(dir, 'hub-token');
  writeFileSync(tokenFile, options.token);
  writeFileSync(
    config,
    [
      'route:',
      '  receiver: hub',
      "  group_by: ['alertname']",
      '  group_wait: 300ms',
      '  group_interval: 1s',
      '  repeat_interval: 1h',
      'receivers:',
      '  - name: hub',
      '    webhook_configs:',
      `      - url: ${options.webhookUrl}`,
      '        send_resolved: true',
      '        http_config:',
      '          authorization:',
      `            credentials_file: ${tokenFile}`,
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${webPort}`;
  const clusterAddress = `127.0.0.1:${clusterPort}`;
  const args = [
    `--config.file=${config}`,
    `--storage.path=${dir}`,
    `--web.listen-address=127.0.0.1:${webPort}`,
    `--web.external-url=${url}`,
    `--cluster.listen-address=${options.peers ? clusterAddress : ''}`,
    ...(options.peers ?? []).map((peer) => `--cluster.peer=${peer}`),
    // Fast gossip, so that the cluster settles in about a second instead of a minute (at most 2 s when slow).
    `--cluster.gossip-interval=${options.slowGossip ? '1s' : '50ms'}`,
    `--cluster.pushpull-interval=${options.slowGossip ? '30s' : '1s'}`,
    '--cluster.settle-timeout=2s',
    `--cluster.peer-timeout=${options.peerTimeout ?? '15s'}`,
    '--log.level=debug',
  ];
  const child = spawn(ALERTMANAGER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  everyChild.add(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Alertmanager did not start:\n${output.slice(-2000)}`);
    }
    await sleep(50);
  }
  return {
    url,
    clusterAddress,
    output: () => output,
    async pushAlerts(alerts) {
      const res = await fetch(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts) });
      if (!res.ok) throw new Error(`Alertmanager refused the alerts: ${res.status} ${await res.text()}`);
    },
    async close() {
      // Its data is a temporary folder, and a cluster member's graceful leave takes seconds.
      child.kill('SIGKILL');
      await exited;
      everyChild.delete(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
