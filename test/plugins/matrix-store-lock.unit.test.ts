/**
 * The crypto store's owner lock, between real processes: a live holder keeps
 * it and is named; a holder that is gone — exited, SIGKILLed, or killed and
 * not yet reaped by its parent (a zombie, which a pid check takes for alive) —
 * leaves it free at once; a waiter takes it over as soon as the holder ends.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { lockStore, storeHolder, tryLockStore } from '../../plugins/matrix/crypto/store-lock.ts';

const LOCK_MODULE = join(import.meta.dirname, '../../plugins/matrix/crypto/store-lock.ts');
const dirs: string[] = [];
const children: ChildProcess[] = [];

function storeDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hub-store-lock-'));
  dirs.push(dir);
  return dir;
}

/** Node code that takes the lock on `dir`, prints `holder <pid>`, and keeps it until killed. */
const holderScript = (dir: string) =>
  `import { tryLockStore } from ${JSON.stringify(LOCK_MODULE)};
   globalThis.lock = tryLockStore(${JSON.stringify(dir)});
   if (!globalThis.lock) { console.log('busy'); process.exit(3); }
   console.log('holder ' + process.pid);
   setInterval(() => {}, 60_000);`;

/** Read lines of `child`'s stdout until one matches. */
async function line(child: ChildProcess, pattern: RegExp): Promise<string> {
  let seen = '';
  for await (const chunk of child.stdout!) {
    seen += String(chunk);
    const match = seen.split('\n').find((l) => pattern.test(l));
    if (match) return match;
  }
  throw new Error(`the child ended without printing ${pattern}: ${seen}`);
}

/** A process holding the lock on `dir`, and its pid. */
async function holder(dir: string): Promise<{ child: ChildProcess; pid: number }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', holderScript(dir)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const pid = Number((await line(child, /^holder \d+/)).split(' ')[1]);
  return { child, pid };
}

function processState(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
  } catch {
    return undefined;
  }
}

after(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('crypto store lock', () => {
  test('a live holder keeps the store; the waiter is told who holds it', async () => {
    const dir = storeDir();
    const { child, pid } = await holder(dir);
    assert.equal(tryLockStore(dir), undefined, 'held by the other process');
    assert.equal(storeHolder(dir)?.pid, pid);
    child.kill('SIGKILL');
    await once(child, 'exit');
  });

  test('one process cannot take its own store twice, and the refused try does not let go of the first; released, it is free', async () => {
    const dir = storeDir();
    const first = tryLockStore(dir);
    assert.ok(first);
    assert.equal(tryLockStore(dir), undefined);
    // POSIX locks end when the process closes any descriptor of the file: the refused try closed one.
    const other = spawn(process.execPath, ['--input-type=module', '-e', holderScript(dir)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(other);
    assert.equal(await line(other, /^(busy|holder)/), 'busy', 'still held for other processes');
    first.release();
    const again = tryLockStore(dir);
    assert.ok(again, 'free once released');
    again.release();
  });

  test('a holder killed with SIGKILL leaves the store free at once', async () => {
    const dir = storeDir();
    const { child } = await holder(dir);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const lock = tryLockStore(dir);
    assert.ok(lock, 'taken over with no restart and no wait');
    lock.release();
  });

  test('a holder killed but not reaped by its parent (a zombie, alive to a pid check) leaves the store free', async () => {
    const dir = storeDir();
    // The shell starts the holder, then becomes `sleep`, which never reaps it: as under a shell as a container's entry point.
    const parent = spawn('/bin/sh', ['-c', `"$0" --input-type=module -e "$1" & exec sleep 600`, process.execPath, holderScript(dir)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(parent);
    const pid = Number((await line(parent, /^holder \d+/)).split(' ')[1]);
    process.kill(pid, 'SIGKILL');
    while (processState(pid) !== 'Z') await new Promise((r) => setTimeout(r, 20));
    // The kernel drops the lock once the last of its threads is gone, a moment after its main thread turned zombie.
    const lock = await lockStore(dir, AbortSignal.timeout(30_000), () => {});
    assert.equal(processState(pid), 'Z', 'still not reaped when the store was taken');
    assert.doesNotThrow(() => process.kill(pid, 0), 'a pid check would still call it alive');
    lock.release();
    parent.kill('SIGKILL');
  });

  test('a waiter takes the store over as soon as the holder exits; it was told once who held it', async () => {
    const dir = storeDir();
    const { child, pid } = await holder(dir);
    const told: Array<number | undefined> = [];
    const waiting = lockStore(dir, AbortSignal.timeout(60_000), (h) => told.push(h?.pid));
    let taken = false;
    void waiting.then(() => (taken = true));
    // Several tries come and go while the holder lives.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(taken, false, 'not while the holder lives');
    child.kill('SIGTERM');
    await once(child, 'exit');
    const lock = await waiting;
    assert.deepEqual(told, [pid]);
    assert.equal(storeHolder(dir)?.pid, process.pid, 'the new holder wrote itself down');
    lock.release();
  });

  test('a waiter that is told to stop stops waiting', async () => {
    const dir = storeDir();
    const { child } = await holder(dir);
    const stop = new AbortController();
    const waiting = lockStore(dir, stop.signal, () => stop.abort());
    await assert.rejects(waiting, { name: 'AbortError' });
    child.kill('SIGKILL');
    await once(child, 'exit');
  });
});
