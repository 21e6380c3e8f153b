/** Helpers of the HTTP ingress tests: producer tokens, a POST, a raw socket, an Alertmanager payload. */
import { connect } from 'node:net';
import { request } from 'undici';

export const OPS_TOKEN = 'ops-token-5f1c0e9a7b3d42e8a6c1';
export const ALERTS_TOKEN = 'alerts-token-8d2b7f4c1e9a06b3d5';
export const SLOW_TOKEN = 'slow-token-3a9e6c2f8b1d47e0c4';

export const TOKENS = [
  { name: 'ops-scripts', token: OPS_TOKEN, groups: ['*'] },
  { name: 'alertmanager', token: ALERTS_TOKEN, groups: ['#alerts', '#ops'] },
  { name: 'chatty', token: SLOW_TOKEN, groups: ['*'], rate: '2/min' },
];

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: Record<string, unknown>;
}

/** One POST (or another method) to the ingress; the JSON answer. */
export async function post(port: number, path: string, options: { token?: string; body?: string | Buffer; type?: string; headers?: Record<string, string>; method?: 'POST' | 'GET' | 'PUT' | 'DELETE' } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.type) headers['content-type'] = options.type;
  const res = await request(`http://127.0.0.1:${port}${path}`, { method: options.method ?? 'POST', headers, body: options.body ?? null });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Write `chunks` to a raw connection (waiting `pauseMs` between them), then read what the server answers until it closes. */
export async function rawExchange(port: number, chunks: string[], pauseMs = 0, timeoutMs = 20_000): Promise<{ status: number; body: string; raw: string }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let raw = '';
  socket.on('data', (d) => (raw += d.toString('utf8')));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  for (const chunk of chunks) {
    if (socket.destroyed) break;
    socket.write(chunk);
    if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
  }
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  await closed;
  clearTimeout(timer);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
  return { status, body: raw.slice(raw.indexOf('\r\n\r\n') + 4), raw };
}

/** An Alertmanager webhook notification (version 4) as documented, for `alerts`. */
export function notification(options: {
  status: 'firing' | 'resolved';
  groupKey?: string;
  alerts: Array<{ name: string; instance: string; status?: 'firing' | 'resolved'; summary?: string; fingerprint?: string }>;
  truncatedAlerts?: number;
}): Record<string, unknown> {
  const startsAt = '2026-12-04T10:00:00Z';
  return {
    version: '4',
    groupKey: options.groupKey ?? '{}:{alertname="HighLatency"}',
    truncatedAlerts: options.truncatedAlerts ?? 0,
    status: options.status,
    receiver: 'hub',
    groupLabels: { alertname: options.alerts[0]!.name },
    commonLabels: { alertname: options.alerts[0]!.name, job: 'api', severity: 'page' },
    commonAnnotations: {},
    externalURL: 'http://alertmanager.example.org:9093',
    alerts: options.alerts.map((a) => ({
      status: a.status ?? options.status,
      labels: { alertname: a.name, job: 'api', severity: 'page', instance: a.instance },
      annotations: { summary: a.summary ?? `latency high on ${a.instance}`, description: 'p99 over 2 s for 5 minutes' },
      startsAt,
      endsAt: (a.status ?? options.status) === 'resolved' ? '2026-12-04T10:30:00Z' : '0001-01-01T00:00:00Z',
      generatorURL: `http://prometheus.example.org:9090/graph?g0.expr=latency%7Binstance%3D%22${a.instance}%22%7D`,
      fingerprint: a.fingerprint ?? `fp-${a.instance}`,
    })),
  };
}
