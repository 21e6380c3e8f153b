import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { discoverPlugins } from '../../core/runtime/plugin-loader.ts';
import { resolvePluginSettings } from '../../core/runtime/plugin-settings.ts';
import { PluginRegistry } from '../../core/runtime/plugin-registry.ts';
import { resolveConfig } from '../../core/config/load-config.ts';
import type { HubConfigInput } from '../../core/config/schema.ts';
import type { Env } from '../../core/config/env.ts';
import { Redactor } from '../../core/redactor.ts';
import type { ChannelPlugin } from '../../core/plugin-api.ts';
import email from '../../plugins/email/index.ts';
import matrix from '../../plugins/matrix/index.ts';
import webhook from '../../plugins/webhook/index.ts';

const FIXTURES = resolve(import.meta.dirname, '../fixtures/plugins');
const fixture = (...parts: string[]) => join(FIXTURES, ...parts);

/** The HubError a discovery of these folders fails with. */
async function discoveryError(dirs: string[], modules: string[] = []): Promise<string> {
  try {
    await discoverPlugins({ dirs, modules });
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'HUB_ERR_PLUGIN', `unexpected error: ${String(err)}`);
    return (err as Error).message;
  }
  assert.fail(`discovering ${dirs.join(', ')} should fail`);
}

function settingsError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'HUB_ERR_CONFIG', `unexpected error: ${String(err)}`);
    return (err as Error).message;
  }
  assert.fail('expected the settings to be refused');
}

/** The reason of settings that are given and wrong: the channel is reported down, the others run. */
function invalidReason(settings: ReturnType<typeof resolvePluginSettings>): string {
  assert.equal(settings.state, 'invalid', `expected the settings to be invalid, got ${JSON.stringify(settings)}`);
  return (settings as { reason: string }).reason;
}

const asPlugin = (p: unknown) => p as ChannelPlugin<object>;

describe('plugin discovery: each bad plugin fails at start, naming its folder and the problem', () => {
  const cases: Array<{ what: string; dir: string; message: (folder: string) => string }> = [
    {
      what: 'a folder without index.ts or index.js',
      dir: 'no-index',
      message: (folder) => `plugin folder ${folder} has no index.ts or index.js; a plugin folder needs one that default-exports definePlugin({...})`,
    },
    {
      what: 'a module without a default export',
      dir: 'no-default',
      message: (folder) => `plugin ${folder}/index.ts: has no default export; export default definePlugin({...})`,
    },
    {
      what: 'a default export that is not a plugin object',
      dir: 'not-a-plugin',
      message: (folder) => `plugin ${folder}/index.ts: its default export is not a plugin object; export default definePlugin({...})`,
    },
    {
      what: 'a plugin written for another plugin API version',
      dir: 'wrong-api',
      message: (folder) => `plugin ${folder}/index.ts: it was written for plugin API 2, this hub implements 1`,
    },
    {
      what: 'a name that is not a lower-case channel name',
      dir: 'bad-name',
      message: (folder) => `plugin ${folder}/index.ts: its name "Echo Channel" is not a lower-case channel name such as "matrix"`,
    },
    {
      what: 'a plugin object without createSender',
      dir: 'incomplete',
      message: (folder) => `plugin ${folder}/index.ts: createSender is not a function`,
    },
    {
      what: 'a module that throws while it loads',
      dir: 'throws',
      message: (folder) => `plugin ${folder}/index.ts: cannot be loaded: echo: cannot find its templates folder`,
    },
  ];
  for (const { what, dir, message } of cases) {
    test(what, async () => {
      assert.equal(await discoveryError([fixture(dir)]), message(fixture(dir, 'echo')));
    });
  }

  test('two folders whose plugins have the same name: both named, the second refused', async () => {
    const message = await discoveryError([fixture('clash', 'one'), fixture('clash', 'two')]);
    assert.equal(
      message,
      `plugin ${fixture('clash', 'two', 'echo', 'index.ts')}: the name "echo" is already taken by ${fixture('clash', 'one', 'echo', 'index.ts')}; rename one of them`,
    );
  });

  test('a plugins folder that does not exist is named, with what to do', async () => {
    const message = await discoveryError(['./no-such-plugins-folder']);
    assert.equal(message, 'plugins folder ./no-such-plugins-folder does not exist; create it or remove it from plugins.dirs (or HUB_PLUGIN_DIRS)');
  });

  test('a plugin module that does not exist is named', async () => {
    const missing = fixture('no-such-plugin.ts');
    const message = await discoveryError([], [missing]);
    assert.match(message, new RegExp(`^plugin ${missing.replaceAll('.', '\\.')}: cannot be loaded: Cannot find module`));
  });

  test('an npm package named in plugins.modules that is not installed is named, with the folder to install it in', async () => {
    const message = await discoveryError([], ['notification-hub-plugin-nowhere']);
    assert.equal(message, `plugin package notification-hub-plugin-nowhere is not installed: run npm install notification-hub-plugin-nowhere in ${process.cwd()}, or remove it from plugins.modules`);
  });

  test('a module name clashing with a shipped plugin is refused', async () => {
    const message = await discoveryError(['./plugins'], [fixture('clash', 'one', 'echo', 'index.ts'), fixture('clash', 'two', 'echo', 'index.ts')]);
    assert.match(message, /the name "echo" is already taken by .*clash\/one\/echo\/index\.ts; rename one of them$/);
  });

  test('a good folder loads; hidden folders and plain files beside it are skipped', async () => {
    const found = await discoverPlugins({ dirs: [fixture('good')], modules: [] });
    assert.deepEqual(
      found.map((p) => [p.plugin.name, p.source]),
      [['echo', fixture('good', 'echo', 'index.ts')]],
    );
  });

  test('the shipped plugins folder loads every shipped channel', async () => {
    const found = await discoverPlugins({ dirs: ['./plugins'], modules: [] });
    assert.deepEqual(found.map((p) => p.plugin.name), ['console', 'email', 'matrix', 'slack', 'twitter', 'webhook']);
  });

  test('relative plugin dirs and modules resolve against the given working directory', async () => {
    const byDir = await discoverPlugins({ dirs: ['good'], modules: [], cwd: FIXTURES });
    assert.deepEqual(byDir.map((p) => p.source), [fixture('good', 'echo', 'index.ts')]);
    const byModule = await discoverPlugins({ dirs: [], modules: ['./clash/two/echo/index.ts'], cwd: FIXTURES });
    assert.deepEqual(byModule.map((p) => [p.plugin.description, p.source]), [['echo from folder two', fixture('clash', 'two', 'echo', 'index.ts')]]);
  });
});

describe('plugin settings: the config file overlaid with the environment', () => {
  test('a secret in the config file is refused, naming the key and the variable to set instead', () => {
    const message = settingsError(() => resolvePluginSettings(asPlugin(email), { url: 'smtp://hub:hunter2@mail.example.org:587' }, {}, new Redactor()));
    assert.equal(message, 'channels.email.url: secrets are read only from the environment; remove it from the config file and set SMTP_URL');
    assert.doesNotMatch(message, /hunter2/);
  });

  test('a secret in the config file is refused even when the variable is set as well', () => {
    const message = settingsError(() =>
      resolvePluginSettings(asPlugin(webhook), { secret: 'in-the-file' }, { WEBHOOK_SECRET: 'from-the-env' }, new Redactor()),
    );
    assert.equal(message, 'channels.webhook.secret: secrets are read only from the environment; remove it from the config file and set WEBHOOK_SECRET');
  });

  test('a channel with none of its variables set is not started, and the variables to set are named', () => {
    assert.deepEqual(resolvePluginSettings(asPlugin(email), {}, {}, new Redactor()), { state: 'unconfigured', reason: 'not configured: set SMTP_URL, EMAIL_FROM' });
  });

  test('an unconfigured channel names only its missing required variables, not the optional ones', () => {
    const settings = resolvePluginSettings(asPlugin(matrix), { msgtype: 'm.notice' }, {}, new Redactor());
    assert.deepEqual(settings, { state: 'unconfigured', reason: 'not configured: set MATRIX_HOMESERVER, MATRIX_USER_ID, MATRIX_ACCESS_TOKEN' });
  });

  test('a key given in the file is not asked for again', () => {
    const settings = resolvePluginSettings(asPlugin(email), { from: 'hub@example.org' }, {}, new Redactor());
    assert.deepEqual(settings, { state: 'unconfigured', reason: 'not configured: set SMTP_URL' });
  });

  test('a half-configured channel (one variable set, and invalid) is invalid, in one sentence naming channels.<name>.<key> and the variable', () => {
    const reason = invalidReason(resolvePluginSettings(asPlugin(email), {}, { SMTP_URL: 'mail.example.org:587' }, new Redactor()));
    assert.match(reason, /^invalid settings of channel email: /);
    assert.match(reason, /channels\.email\.url: must be smtp:\/\/user:password@host:port or smtps:\/\/user:password@host:port \(from SMTP_URL\)(;|$)/);
    assert.doesNotMatch(reason, /\n/);
  });

  test('a value from the file that is wrong is named without a variable', () => {
    const env = { MATRIX_HOMESERVER: 'https://matrix.example.org', MATRIX_USER_ID: '@hub:example.org', MATRIX_ACCESS_TOKEN: 'test-access-token' };
    const reason = invalidReason(resolvePluginSettings(asPlugin(matrix), { msgtype: 'm.shout' }, env, new Redactor()));
    assert.match(reason, /channels\.matrix\.msgtype: .*"m\.text"\|"m\.notice"$/);
  });

  test('<VAR>_FILE is read for plugin variables too, and a secret read so is redacted from then on', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'hub-plugin-settings-'));
    try {
      const path = join(dir, 'token');
      writeFileSync(path, 'echo-secret-token\n');
      const redactor = new Redactor();
      const plugin = (await import('../fixtures/plugins/good/echo/index.ts')).default;
      const settings = resolvePluginSettings(asPlugin(plugin), { loud: true }, { ECHO_URL: 'https://echo.example.org', ECHO_TOKEN_FILE: path }, redactor);
      assert.deepEqual(settings, { state: 'ready', settings: { url: 'https://echo.example.org', token: 'echo-secret-token', loud: true } });
      assert.equal(redactor.redact('401 for token echo-secret-token'), '401 for token [redacted]');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a channel with every setting optional runs without any variable', () => {
    assert.deepEqual(resolvePluginSettings(asPlugin(webhook), {}, {}, new Redactor()), { state: 'ready', settings: { timeoutMs: 10_000 } });
  });
});

describe('PluginRegistry.load: the channels a mapping may name, and which can run here', () => {
  async function load(config: HubConfigInput, env: Env = {}): Promise<PluginRegistry> {
    return PluginRegistry.load(resolveConfig(config, {}), env, new Redactor());
  }

  test('the shipped plugins with an empty environment: all installed, only the console and the webhook run (they need no settings)', async () => {
    const registry = await load({ plugins: { dirs: ['./plugins'], modules: [] } });
    assert.deepEqual([...registry.names], ['console', 'email', 'matrix', 'slack', 'twitter', 'webhook']);
    assert.deepEqual(registry.configured, ['console', 'webhook']);
    const email = registry.entries.get('email')!;
    assert.deepEqual(email.settings, { state: 'unconfigured', reason: 'not configured: set SMTP_URL, EMAIL_FROM' });
    assert.equal(email.source, resolve('plugins/email/index.ts'));
  });

  test('a channel becomes ready when its variables are set', async () => {
    const registry = await load({ plugins: { dirs: [fixture('good')], modules: [] } }, { ECHO_URL: 'https://echo.example.org', ECHO_TOKEN: 'long-enough-token' });
    assert.deepEqual(registry.configured, ['echo']);
  });

  test('a half-configured channel does not fail the load: it is wanted but not configured, with the key and the variable named', async () => {
    const registry = await load({ plugins: { dirs: [fixture('good')], modules: [] } }, { ECHO_URL: 'https://echo.example.org', ECHO_TOKEN: 'short' });
    assert.deepEqual(registry.configured, []);
    assert.deepEqual(registry.wanted, ['echo']);
    assert.match(invalidReason(registry.entries.get('echo')!.settings), /channels\.echo\.token: must be at least 8 characters \(from ECHO_TOKEN\)$/);
  });

  test('a secret in channels.<name> of the config file fails the load', async () => {
    await assert.rejects(load({ plugins: { dirs: ['./plugins'], modules: [] }, channels: { slack: { token: 'xoxb-file' } } }), {
      message: 'channels.slack.token: secrets are read only from the environment; remove it from the config file and set SLACK_TOKEN',
    });
  });

  test('targetRules validate with the plugin and normalize with it', async () => {
    const registry = await load({ plugins: { dirs: [fixture('good')], modules: ['./plugins/email/index.ts'] } });
    const rules = registry.targetRules;
    assert.equal(rules.get('echo')!.validate('mail:x'), 'not an echo target (expected echo:<name>)');
    assert.equal(rules.get('echo')!.normalize('echo:LOUD'), 'echo:loud');
    assert.equal(rules.get('email')!.normalize('On call <OnCall@Example.ORG>'), 'oncall@example.org');
  });
});

describe('fixed bugs stay fixed (plugins)', () => {
  test('a plugin whose name is not its folder name is refused, naming the folder (plugin-api.ts: "Must equal the folder name")', async () => {
    const message = await discoveryError([fixture('name-mismatch')]);
    assert.match(message, new RegExp(`${fixture('name-mismatch', 'echo')}.*"shout"`));
  });

  test('a half-configured channel names the variable still to set, not only the one that is set', () => {
    const reason = invalidReason(resolvePluginSettings(asPlugin(email), {}, { SMTP_URL: 'smtp://mail.example.org:587' }, new Redactor()));
    assert.match(reason, /channels\.email\.from: .*EMAIL_FROM/);
  });

  test('a wrong value in the config file of a channel with no variables set is reported, not "set WEBHOOK_SECRET"', () => {
    const outcome = (() => {
      try {
        return resolvePluginSettings(asPlugin(webhook), { timeoutMs: 'ten seconds' }, {}, new Redactor());
      } catch (err) {
        return (err as Error).message;
      }
    })();
    const text = typeof outcome === 'string' ? outcome : outcome.state === 'ready' ? 'ready' : outcome.reason;
    assert.match(text, /channels\.webhook\.timeoutMs/);
    assert.doesNotMatch(text, /set WEBHOOK_SECRET/);
  });
});
