/**
 * matrix-js-sdk is loaded by the end-to-end crypto only: a hub, the CLI and a
 * matrix worker without MATRIX_CRYPTO_STORE never load it (about 28 MB and a
 * second of start-up each; README, Performance).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';

const ROOT = join(import.meta.dirname, '../..');

/** Runs `code` in a fresh Node and answers every import of matrix-js-sdk it made. */
async function sdkImports(code: string): Promise<string[]> {
  const hook = `import { registerHooks } from 'node:module';
registerHooks({ resolve(specifier, context, next) {
  if (specifier.startsWith('matrix-js-sdk')) process.stdout.write('sdk ' + specifier + ' from ' + context.parentURL + '\\n');
  return next(specifier, context);
} });`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, '--input-type=module', '-e', code], { cwd: ROOT });
  return stdout.split('\n').filter((line) => line.startsWith('sdk '));
}

describe('matrix plugin: matrix-js-sdk only with encryption', () => {
  test('the plugin, its sender and its watcher load without the SDK', async () => {
    const code = `
      const plugin = (await import('./plugins/matrix/index.ts')).default;
      const { createMatrixSender } = await import('./plugins/matrix/sender.ts');
      const { createMatrixWatcher } = await import('./plugins/matrix/watcher.ts');
      if (plugin.name !== 'matrix' || typeof createMatrixSender !== 'function' || typeof createMatrixWatcher !== 'function') throw new Error('not the plugin');`;
    assert.deepEqual(await sdkImports(code), []);
  });

  test('the probe sees an import of the SDK (so that the test above can fail)', async () => {
    const code = `
      const { MatrixCrypto } = await import('./plugins/matrix/crypto/engine.ts');
      if (typeof MatrixCrypto !== 'function') throw new Error('no engine');
      await import('matrix-js-sdk');`;
    assert.equal((await sdkImports(code)).length > 0, true);
  });
});
