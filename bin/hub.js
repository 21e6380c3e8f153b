#!/usr/bin/env node
// The `hub` command (package.json "bin", `npx hub`). A checkout runs the
// TypeScript sources, which Node strips of their types itself; an installed
// copy runs the compiled dist/ (`npm pack` builds it), because Node strips
// no types under node_modules. Plain JavaScript, so that it can say which
// Node it needs instead of failing on the first type annotation.
import { existsSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const sources = join(root, 'core', 'cli', 'main.ts');
const compiled = join(root, 'dist', 'core', 'cli', 'main.js');
const installed = root.split(sep).includes('node_modules');

const main = !installed && process.features.typescript && existsSync(sources) ? sources : existsSync(compiled) ? compiled : undefined;
if (main === undefined) {
  process.stderr.write(
    `hub: this Node (${process.version}) cannot run the TypeScript sources and there is no compiled copy; ` +
      'run it as `npm run hub -- <command>` (the project\'s own Node 24), use Node 22.19 or later, or build it with `npm run build`\n',
  );
  process.exit(1);
}
await import(pathToFileURL(main).href);
