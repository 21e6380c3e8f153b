/**
 * The console in a real browser (Debian's Chromium, headless, driven by
 * playwright-core) against a whole hub, the real Redis and the fake Matrix
 * homeserver: sign in, see the flow, find a message the test sent and its
 * attempts, replay a dead letter and see it delivered, save a bad mapping and
 * see the error at its path, save a good one and see it in force. Each page
 * is photographed into a temporary folder (`CONSOLE_SCREENSHOTS=docs` also
 * renews the README's pictures under docs/).
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { javascriptSize, loadAssets } from '../../core/console/assets.ts';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { type MatrixBot, matrixEnv, settled } from '../support/e2e.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { REPO_ROOT } from '../support/processes.ts';

const TOKEN = 'console-test-token-7f3a9c2e1b';
const CHROMIUM = '/usr/bin/chromium';
const WAIT_MS = 120_000;
const shots = mkdtempSync(join(tmpdir(), 'console-shots-'));
const docs = join(REPO_ROOT, 'docs');
const README_SHOTS = ['flow', 'trace', 'dead-letters', 'mapping', 'phone'];

describe('the console in Chromium', () => {
  let hs: Homeserver;
  let bot: MatrixBot;
  let open: string;
  let closed: string;
  let hub: TestHub;
  let browser: BrowserContext;
  let page: Page;
  let base: string;
  const pageErrors: string[] = [];

  /** Into the temporary folder; with CONSOLE_SCREENSHOTS=docs, the README's pictures are replaced too. */
  const shoot = async (name: string, target = page) => {
    const file = join(shots, `${name}.png`);
    await target.screenshot({ path: file, fullPage: true });
    if (process.env.CONSOLE_SCREENSHOTS === 'docs' && README_SHOTS.includes(name)) {
      mkdirSync(docs, { recursive: true });
      copyFileSync(file, join(docs, `console-${name}.png`));
    }
  };

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)`);
    hs = await startHomeserver();
    bot = hs.registerUser('bot');
    const alice = hs.registerUser('alice').userId;
    open = hs.createRoom(bot.userId, { name: 'ops' });
    closed = hs.createRoom(alice, { name: 'locked' });
    hub = await startTestHub({
      name: 'console',
      mapping: { '#ops': { matrix: [open] }, '#locked': { matrix: [closed] }, '#storm': { matrix: [open], throttle: { window: '1h' } } },
      env: { ...matrixEnv(hs, bot), HUB_CONSOLE_TOKEN: TOKEN },
      config: { logLevel: 'info', plugins: { dirs: [], modules: [`${REPO_ROOT}/plugins/matrix/index.ts`] } },
    });
    base = `http://127.0.0.1:${hub.app.http!.port}/console/`;
    // A fresh profile of its own (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'console-chromium-')), {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1200, height: 800 },
    });
    // Generous deadlines: the suite runs beside another copy of itself on two cores.
    browser.setDefaultTimeout(WAIT_MS);
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // A module that fails to load is no page error, only a console one. The API's 401/404/422 answers are the
    // page's to show (the tests check it does), and Chromium asks for a /favicon.ico the hub does not have.
    page.on('console', (message) => {
      const { url } = message.location();
      if (message.type() !== 'error' || url.includes('/console/api/') || url.endsWith('/favicon.ico')) return;
      pageErrors.push(`${message.text()} (${url})`);
    });
  });

  after(async () => {
    // The page as it was last: what a failed wait was looking at.
    await page?.screenshot({ path: join(shots, 'last.png'), fullPage: true }).catch(() => {});
    for (const [channel, reason] of hub?.app.down ?? []) console.log(`# channel ${channel} did not start: ${reason}`);
    await browser?.close();
    await hub?.stop();
    await hs?.close();
    console.log(`# screenshots in ${shots}`);
    assert.deepEqual(pageErrors, [], 'the page threw no error');
  });

  test('a wrong token is refused; the right one signs in and shows the flow', async () => {
    const started = Date.now();
    await page.goto(base);
    await page.fill('input[name=token]', 'not-the-token-at-all');
    await page.click('button[type=submit]');
    await page.getByRole('alert').filter({ hasText: 'that is not the console token' }).waitFor();
    await shoot('signin');

    await page.fill('input[name=token]', TOKEN);
    await page.click('button[type=submit]');
    await page.locator('#channels tr[data-channel=matrix]').filter({ hasText: 'running' }).waitFor();
    const cookies = await page.context().cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0]!.httpOnly, true);
    assert.equal(cookies[0]!.sameSite, 'Strict');
    assert.notEqual(cookies[0]!.value, TOKEN);
    assert.doesNotMatch(await page.content(), new RegExp(TOKEN));

    // First view: a fresh load of the page, signed in, until the flow's table shows (a diagnostic, not an assertion).
    const load = Date.now();
    await page.reload();
    await page.locator('#channels tr[data-channel=matrix]').waitFor();
    const firstView = Date.now() - load;
    const size = javascriptSize(loadAssets());
    console.log(`# console first view ${firstView} ms (sign-in and flow ${Date.now() - started} ms); JavaScript ${(size.raw / 1024).toFixed(1)} KiB, ${(size.gzipped / 1024).toFixed(1)} KiB gzipped`);
  });

  test('a message the test sent: its trace shows the target, the attempt and the peer\'s event id', async () => {
    const entry = await hub.send({ to: '#ops', subject: 'Disk full', body: 'db-1 /var at 97%', id: 'console-disk-1' });
    await settled(hub, entry, 1, WAIT_MS);
    const eventId = hs.messages(open)[0]!.event_id;
    await page.goto(`${base}#trace`);
    await page.fill('input[name=id]', 'console-disk-1');
    await page.click('button[type=submit]');
    const row = page.locator(`#deliveries tr[data-target="${open}"]`);
    await row.waitFor();
    assert.equal(await row.locator('td').nth(2).textContent(), 'sent');
    assert.equal(await row.locator('.peer-id').textContent(), eventId);
    assert.match((await page.locator('#message').textContent())!, new RegExp(entry));
    await row.locator('summary').click();
    await shoot('trace');
  });

  test('a message held for a digest: its trace names the digest, which opens as a trace of its own', async () => {
    const first = await hub.send({ to: '#storm', subject: 'Orders API failing', body: '500 on /api/orders', key: 'orders-api:5xx' });
    await settled(hub, first, 1, WAIT_MS);
    const repeat = await hub.send({ to: '#storm', subject: 'Orders API failing', body: '500 again', key: 'orders-api:5xx' });
    await eventually('the repeat to be routed (held)', async () => (await hub.redis.exists(`${hub.prefix}:msg:${repeat}`)) === 1, WAIT_MS);
    await page.goto(`${base}#trace/${encodeURIComponent(repeat)}`);
    const held = page.locator('#held li');
    await held.filter({ hasText: 'orders-api:5xx' }).filter({ hasText: '1 message held' }).waitFor();
    const link = held.locator('a');
    const digestId = (await link.textContent())!;
    assert.match(digestId, /^digest-\d+$/);
    assert.match((await page.locator('#deliveries').textContent())!, /None: held for the digest below/);
    await shoot('trace-held');
    await link.click();
    await page.locator('#digest').filter({ hasText: 'open' }).filter({ hasText: '#storm' }).waitFor();
    await shoot('trace-digest');
  });

  test('a dead letter, replayed from the console once the room lets the bot in, is delivered', async () => {
    const entry = await hub.send({ to: '#locked', body: 'Backup failed on db-2' });
    const [outcome] = await settled(hub, entry, 1, WAIT_MS);
    assert.equal(outcome!.type, 'dead');
    hs.invite(closed, bot.userId);

    await page.goto(`${base}#dead`);
    const letter = (await hub.read('dead')).find((l) => l.entry === entry)!;
    const row = page.locator(`#letters tr[data-letter="${letter.id}"]`);
    await row.waitFor();
    await row.getByRole('link').click();
    await row.locator('.original').filter({ hasText: 'Backup failed on db-2' }).waitFor();
    await shoot('dead-letters');
    await row.locator('input[type=checkbox]').check();
    await page.getByRole('button', { name: 'Replay selected' }).click();
    await page.getByRole('dialog').filter({ hasText: 'Replay 1 selected dead letter?' }).waitFor();
    await page.getByRole('button', { name: 'Yes, do it' }).click();
    await page.locator('#said').filter({ hasText: 'Replayed 1 dead letter.' }).waitFor();
    await eventually('the replayed message in the room', () => hs.messages(closed).length === 1, WAIT_MS);
    assert.equal((hs.messages(closed)[0]!.content as { body: string }).body, 'Backup failed on db-2');
    await page.locator(`#letters tr[data-letter="${letter.id}"]`).waitFor({ state: 'detached' });
  });

  test('a bad mapping is refused with the error at its path; a good one is saved and comes into force', async () => {
    await page.goto(`${base}#mapping`);
    const table = page.locator('#mapping-table');
    await table.filter({ hasText: open }).waitFor();
    const before = (await page.locator('#in-force').textContent())!;
    const editor = page.locator('#mapping-text');

    await editor.fill(JSON.stringify({ _id: 'ccs.notifications', mapping: { '#ops': { matrix: ['not-a-room'] } } }, null, 2));
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('button', { name: 'Yes, do it' }).click();
    const result = page.locator('#mapping-result');
    await result.filter({ hasText: 'Not saved' }).waitFor();
    assert.equal(await result.locator('code.path').first().textContent(), 'mapping["#ops"].matrix[0]');
    await shoot('mapping-error');
    assert.equal(await page.locator('#in-force').textContent(), before, 'the bad mapping is not in force');

    const good = { _id: 'ccs.notifications', mapping: { '#ops': { matrix: [open] }, '#locked': { matrix: [closed] }, '#night': { matrix: [open, closed] } } };
    await editor.fill(JSON.stringify(good, null, 2));
    await page.getByRole('button', { name: 'Check' }).click();
    await result.filter({ hasText: 'Valid: 3 groups.' }).waitFor();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('button', { name: 'Yes, do it' }).click();
    await result.filter({ hasText: 'Saved as revision' }).waitFor();
    const saved = /revision (\S+);/.exec((await result.textContent())!)![1]!;
    await eventually('the new revision in force', () => hub.app.cradle.mappingStore.current?.revision === saved, WAIT_MS);
    // The hub keeps a revision for "What changed" just after it comes into force: on a loaded machine a page
    // loaded in between lists the ones before it, as a user would see until the next reload.
    await eventually('the new revision in force and listed to compare', async () => {
      await page.reload();
      await page.locator('#in-force').filter({ hasText: saved }).waitFor();
      await page.locator('select[name="to"] option').first().waitFor({ state: 'attached' });
      return (await page.locator('select[name="to"] option').first().textContent())?.includes(saved);
    }, WAIT_MS);
    await table.filter({ hasText: '#night' }).waitFor();

    await page.getByRole('button', { name: 'Compare' }).click();
    await page.locator('#diff').filter({ hasText: 'mapping["#night"].matrix[0]' }).waitFor();
    await shoot('mapping');

    // What a producer sends to the new group goes out by it.
    const entry = await hub.send({ to: '#night', body: 'Night shift check' });
    await settled(hub, entry, 2, WAIT_MS);
  });

  test('the flow page charts the outcomes and updates without a reload; it reads on a phone', async () => {
    await page.goto(`${base}#flow`);
    await page.locator('.charts [data-channel=matrix] .legend').filter({ hasText: /[1-9]\d* sent, 0 retrying, [1-9]\d* dead/ }).waitFor();
    await page.locator('#mapping-revision').filter({ hasText: hub.app.cradle.mappingStore.current!.revision }).waitFor();
    const sent = await page.locator('.charts [data-channel=matrix] .legend').textContent();
    const entry = await hub.send({ to: '#ops', body: 'one more' });
    await settled(hub, entry, 1, WAIT_MS);
    await page.locator('.charts [data-channel=matrix] .legend').filter({ hasNotText: sent! }).waitFor();
    await shoot('flow');

    const phone = await browser.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${base}#flow`);
    await phone.locator('.charts [data-channel=matrix]').waitFor();
    const overflow = await phone.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    assert.equal(overflow, 0, 'nothing wider than a phone screen');
    await shoot('phone', phone);
    await phone.close();
  });
});
