/**
 * The console's browser files: its own (public/) and the libraries' ES modules
 * straight from their npm packages (no build step, nothing from a CDN), read
 * once and kept gzipped in memory.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export interface Asset {
  type: string;
  body: Buffer;
  gzipped: Buffer;
  etag: string;
}

const PUBLIC = fileURLToPath(new URL('./public/', import.meta.url));
const moduleFile = (specifier: string) => fileURLToPath(import.meta.resolve(specifier));

/** URL path under /console/ → file. */
function files(): Record<string, string> {
  const uplot = dirname(moduleFile('uplot'));
  return {
    '': join(PUBLIC, 'index.html'),
    'app.js': join(PUBLIC, 'app.js'),
    'style.css': join(PUBLIC, 'style.css'),
    'vendor/preact.mjs': moduleFile('preact'),
    'vendor/hooks.mjs': moduleFile('preact/hooks'),
    'vendor/htm.mjs': moduleFile('htm'),
    'vendor/uplot.mjs': join(uplot, 'uPlot.esm.js'),
    'vendor/uplot.css': join(uplot, 'uPlot.min.css'),
  };
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

export function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [path, file] of Object.entries(files())) {
    const body = readFileSync(file);
    const type = TYPES[file.split('.').pop()!] ?? 'application/octet-stream';
    assets.set(path, { type, body, gzipped: gzipSync(body, { level: 9 }), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

/** The Content-Security-Policy of the page: its own files only, the one inline import map by its hash. */
export function contentSecurityPolicy(index: Asset): string {
  const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(index.body.toString('utf8'))?.[1] ?? '';
  const hash = createHash('sha256').update(importMap).digest('base64');
  return [
    "default-src 'none'",
    `script-src 'self' 'sha256-${hash}'`,
    "style-src 'self' 'unsafe-inline'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** JavaScript bytes gzipped, for the README's budget (under 150 KB). */
export function javascriptSize(assets: Map<string, Asset>): { raw: number; gzipped: number } {
  let raw = 0;
  let gzipped = 0;
  for (const asset of assets.values()) {
    if (!asset.type.startsWith('text/javascript')) continue;
    raw += asset.body.length;
    gzipped += asset.gzipped.length;
  }
  return { raw, gzipped };
}
