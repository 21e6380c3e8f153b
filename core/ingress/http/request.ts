/** The parts of an ingress request: its route, content type, headers and body, each read with its bounds. */
import type { IncomingMessage } from 'node:http';
import type { Refusal } from './entries.ts';

export const TEXT_FORMATS = new Map<string, 'text' | 'markdown' | 'html'>([
  ['text/plain', 'text'],
  ['text/markdown', 'markdown'],
  ['text/html', 'html'],
  // What `curl -d` sends: the text is taken as it is, not form-decoded.
  ['application/x-www-form-urlencoded', 'text'],
]);

export type Route = { endpoint: 'messages' } | { endpoint: 'groups' | 'alertmanager'; group: string };

/** `/v1/groups/ops` and `/v1/groups/%23ops` are both `#ops`. */
export function routeOf(url: string): Route | Refusal {
  const path = url.split('?')[0]!;
  const notFound: Refusal = { status: 404, error: 'not found: this port serves POST /v1/messages, /v1/groups/{group} and /v1/alertmanager/{group}' };
  if (path === '/v1/messages') return { endpoint: 'messages' };
  const match = /^\/v1\/(groups|alertmanager)\/([^/]+)$/.exec(path);
  if (!match) return notFound;
  let name: string;
  try {
    name = decodeURIComponent(match[2]!);
  } catch {
    return { status: 400, error: 'the group in the path is not valid percent-encoding', field: 'to' };
  }
  return { endpoint: match[1] as 'groups' | 'alertmanager', group: (name.startsWith('#') ? name : `#${name}`).normalize('NFC') };
}

export function contentType(header: string | undefined): { media: string; charset?: string } {
  const [media = '', ...params] = (header ?? '').split(';').map((s) => s.trim());
  const charset = params.find((p) => /^charset=/i.test(p))?.slice(8).replace(/^"|"$/g, '');
  return { media: media.toLowerCase(), ...(charset ? { charset } : {}) };
}

export function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

/** Node reads header bytes as Latin-1; `curl -H "Title: Sauvegarde réussie"` sends UTF-8. */
export function utf8Header(value: string | undefined): string | undefined {
  if (value === undefined || !/[\u0080-\u00ff]/.test(value)) return value;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(value, 'latin1'));
  } catch {
    return value;
  }
}

export function kib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}
