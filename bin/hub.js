#!/usr/bin/env node
// The `hub` command (package.json "bin", `npx hub`): the TypeScript sources,
// which Node strips of their types itself. Plain JavaScript, so that on a
// Node that cannot it says which Node it needs instead of failing on the
// first type annotation.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

if (!process.features.typescript) {
  process.stderr.write(
    `hub: this Node (${process.version}) does not strip TypeScript's types, which the hub's sources need; ` +
      "run it as `npm run hub -- <command>` (the project's own Node 24) or with Node 22.19 or later\n",
  );
  process.exit(1);
}
const root = dirname(dirname(fileURLToPath(import.meta.url)));
await import(pathToFileURL(join(root, 'core', 'cli', 'main.ts')).href);
