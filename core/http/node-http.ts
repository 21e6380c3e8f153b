/**
 * node:http, required as CommonJS. An ESM import of a built-in reads every
 * one of its exports, and node:http's lazy WebSocket export then loads Node's
 * bundled undici with TLS, HTTP/2 and zlib: 3-4 MB of every process's RSS
 * for a client none of them uses (bench/: a bare process 73.5 against 70 MB).
 */
import { createRequire } from 'node:module';

const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export const { createServer, STATUS_CODES } = http;
