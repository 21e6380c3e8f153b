/**
 * A clone of this repository has nothing beside it: no tracked file (code,
 * tests, configuration, scripts) may name a folder outside the checkout that
 * the API description files once came from. Markdown is left out, as prose
 * may tell where facts were taken from.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Spelled in pieces so that this file does not match itself.
const FORBIDDEN = [['..', 'shared'].join('/'), ['shared', 'specs'].join('/')];

test('no tracked file outside Markdown refers to a shared folder beside the checkout', () => {
  const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  assert.ok(tracked.length > 100, `git ls-files listed only ${tracked.length} files in ${ROOT}`);
  const offenders = tracked
    .filter((file) => !file.endsWith('.md') && existsSync(join(ROOT, file)))
    .flatMap((file) => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      return FORBIDDEN.filter((word) => text.includes(word)).map((word) => `${file} names ${word}`);
    });
  assert.deepEqual(offenders, [], `a clone has no shared folder beside it:\n${offenders.join('\n')}`);
});
