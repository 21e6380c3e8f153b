/**
 * The hub's log (core/logger.ts): a line is on stdout when the call returns,
 * so the lines a process writes just before it exits (the "stopping" and
 * "stopped" of a stop, the reason of a crash) are all there, in order, and
 * with every secret blanked.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../support/processes.ts';

const run = promisify(execFile);

/** A process that logs two lines in quick succession and exits at once, as `hub start` does when a stop is quick. */
const script = `
import { createLogger } from ${JSON.stringify(pathToFileURL(`${REPO_ROOT}/core/logger.ts`).href)};
import { Redactor } from ${JSON.stringify(pathToFileURL(`${REPO_ROOT}/core/redactor.ts`).href)};
const redactor = new Redactor();
redactor.add('s3cret-token');
const logger = createLogger({ level: 'info', redactor });
setTimeout(() => {
  logger.info('stopping');
  setImmediate(() => {
    logger.info('stopped with s3cret-token');
    process.exit(0);
  });
}, 5);
`;

test('the lines written just before an exit are all on stdout, in order, redacted', async () => {
  // A line written asynchronously and still in flight at the exit came out after the next one, or not at all:
  // nearly every run of a few dozen showed it.
  const runs = await Promise.all(Array.from({ length: 20 }, () => run(process.execPath, ['--input-type=module', '-e', script])));
  for (const { stdout } of runs) {
    const messages = stdout.trimEnd().split('\n').map((line) => (JSON.parse(line) as { msg: string }).msg);
    assert.deepEqual(messages, ['stopping', 'stopped with [redacted]']);
  }
});
