/**
 * Who may use the console, over plain HTTP as an attacker's script would:
 * off without HUB_CONSOLE_TOKEN; a wrong token refused; the API closed
 * without the session cookie; an action without the session's CSRF header,
 * or from another site, refused (and nothing done); the token never in an
 * answer or a log line; a token in the config file refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { resolveConfig } from '../../core/config/load-config.ts';
import { httpGet } from '../support/e2e.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { REPO_ROOT } from '../support/processes.ts';

const TOKEN = 'access-test-token-5d1e8b7a90c4';
const plugins = { dirs: [], modules: [`${REPO_ROOT}/plugins/webhook/index.ts`] };
const mapping = { '#ops': { webhook: ['https://hooks.example.org/ops'] } };

describe('console access', () => {
  let hub: TestHub;
  let base: string;
  before(async () => {
    hub = await startTestHub({ name: 'console-access', mapping, env: { HUB_CONSOLE_TOKEN: TOKEN }, config: { plugins } });
    base = `http://127.0.0.1:${hub.app.http!.port}/console`;
  });
  after(async () => hub?.stop());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}/api/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const signIn = async () => {
    const res = await post('signin', { token: TOKEN });
    assert.equal(res.status, 200);
    const { csrf } = (await res.json()) as { csrf: string };
    return { cookie: res.headers.get('set-cookie')!.split(';')[0]!, csrf };
  };

  test('a wrong or missing token is refused with a sentence; the right one sets an HttpOnly, SameSite=Strict cookie without the token', async () => {
    for (const body of [{ token: 'wrong-token-of-some-length' }, { token: '' }, {}, { token: TOKEN.slice(0, -1) }]) {
      const res = await post('signin', body);
      assert.equal(res.status, 401);
      assert.deepEqual(await res.json(), { error: 'that is not the console token (HUB_CONSOLE_TOKEN)' });
      assert.equal(res.headers.get('set-cookie'), null);
    }
    assert.equal((await fetch(`${base}/api/signin`, { method: 'POST', body: 'token=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status, 415);
    const res = await post('signin', { token: TOKEN });
    const cookie = res.headers.get('set-cookie')!;
    assert.match(cookie, /^hub_console=[\w-]{43}; Path=\/console; HttpOnly; SameSite=Strict$/);
    assert.ok(!cookie.includes(TOKEN));
    assert.ok(!(await res.text()).includes(TOKEN));
  });

  test('the API answers 401 without a session; the page itself carries no data', async () => {
    for (const path of ['flow', 'dead', 'mapping', 'trace?id=1-0', 'session']) {
      const res = await fetch(`${base}/api/${path}`);
      assert.equal(res.status, 401, path);
      assert.deepEqual(await res.json(), { error: 'sign in first' });
    }
    assert.equal((await fetch(`${base}/api/flow`, { headers: { cookie: 'hub_console=forged' } })).status, 401);
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy')!, /default-src 'none'; script-src 'self' 'sha256-/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
  });

  test('an action without the CSRF header, with a wrong one, or from another site is refused and does nothing', async () => {
    const { cookie, csrf } = await signIn();
    await hub.send({ to: '#nowhere', body: 'dead at once' });
    const letters = await eventually('a dead letter', async () => {
      const dead = await hub.read('dead');
      return dead.length > 0 && dead;
    });
    const ids = letters.map((l) => l.id);
    const refusals: Array<[Record<string, string>, RegExp]> = [
      [{ cookie }, /x-console-csrf header is missing or wrong/],
      [{ cookie, 'x-console-csrf': 'guessed' }, /x-console-csrf header is missing or wrong/],
      [{ cookie, 'x-console-csrf': csrf, origin: 'https://evil.example' }, /comes from another site/],
      [{ 'x-console-csrf': csrf }, /sign in first/],
    ];
    for (const [headers, error] of refusals) {
      for (const action of ['dead/purge', 'dead/replay']) {
        const res = await post(action, { ids }, headers);
        assert.ok(res.status === 403 || res.status === 401, `${action} refused`);
        assert.match(((await res.json()) as { error: string }).error, error);
      }
    }
    assert.deepEqual((await hub.read('dead')).map((l) => l.id), ids, 'nothing was purged or replayed');

    // With the header and the page's own Origin: done, and said.
    const port = hub.app.http!.port;
    const res = await post('dead/purge', { ids }, { cookie, 'x-console-csrf': csrf, origin: `http://127.0.0.1:${port}` });
    assert.deepEqual(await res.json(), { purged: 1 });
    assert.deepEqual(await hub.read('dead'), []);
  });

  test('bad requests get a sentence; the token is in no answer and no log line', async () => {
    const { cookie, csrf } = await signIn();
    const headers = { cookie, 'x-console-csrf': csrf };
    const get = async (path: string) => {
      const res = await fetch(`${base}/api/${path}`, { headers: { cookie } });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    assert.deepEqual(await get('trace?id=nope'), { status: 404, body: { error: 'no message "nope": neither an entry id nor a producer id the hub remembers' } });
    assert.deepEqual(await get('dead?since=yesterday'), { status: 400, body: { error: 'since: expected a time such as 2026-12-04T16:00:00Z, got "yesterday"' } });
    assert.deepEqual(await get('mapping/diff?from=a&to=b'), { status: 404, body: { error: `revision "a" is not among the last 1 kept` } });
    // Times and ids that parse but that Redis would refuse as stream ids: a sentence, not a 500.
    assert.equal((await get('dead?since=-000001-01-01T00:00:00Z')).status, 400);
    assert.equal((await get('dead?until=999999999999999999999')).status, 400);
    for (const ids of [['DROP TABLE'], ['99999999999999999999-0']]) {
      const replay = await post('dead/replay', { ids }, headers);
      assert.deepEqual([replay.status, await replay.json()], [400, { error: 'ids: expected dead letter ids such as 1717171717171-0' }]);
    }
    const check = await post('mapping/check', { text: '{"mapping": ' }, headers);
    assert.equal(check.status, 422);
    assert.match(((await check.json()) as { error: string }).error, /^not valid JSON: /);
    const huge = await post('mapping/check', { text: 'x'.repeat(2 * 1024 * 1024) }, headers);
    assert.deepEqual([huge.status, await huge.json()], [413, { error: 'the request is over 1024 KiB' }]);
    const flow = await get('flow');
    assert.equal(flow.status, 200);
    assert.ok(!JSON.stringify(flow.body).includes(TOKEN));
    assert.equal(hub.logs.filter((line) => line.includes(TOKEN)).length, 0, 'the token is in no log line');
    assert.ok(hub.logs.some((line) => line.includes('console: sign-in refused (wrong token)')));
  });
});

describe('console off', () => {
  test('without HUB_CONSOLE_TOKEN /console is not served', async () => {
    const hub = await startTestHub({ name: 'console-off', mapping, config: { plugins } });
    try {
      const res = await httpGet(hub.app.http!.port, '/console/');
      assert.deepEqual([res.status, res.body], [404, 'not found: this port serves /healthz, /readyz and /metrics\n']);
    } finally {
      await hub.stop();
    }
  });

  test('a token in the config file, or a short one, is a configuration error that says what to do', () => {
    assert.throws(() => resolveConfig({ console: { token: TOKEN } } as never, {}), {
      message: 'console.token: a token does not belong in the config file; set HUB_CONSOLE_TOKEN (or HUB_CONSOLE_TOKEN_FILE) in the environment instead',
    });
    assert.throws(() => resolveConfig({}, { HUB_CONSOLE_TOKEN: 'short' }), {
      message: 'invalid config:\n  console.token: expected at least 16 characters: it is the one secret guarding replay, purge and the mapping (from HUB_CONSOLE_TOKEN)',
    });
  });
});
