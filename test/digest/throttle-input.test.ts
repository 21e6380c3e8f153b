/** The two inputs of throttling: the entry field `key` and the group option `throttle`, each checked with a sentence. */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { resolveConfig } from '../../core/config/load-config.ts';
import { digestMessage } from '../../core/digest/message.ts';
import { parseEntry } from '../../core/ingress/parse-entry.ts';
import { type TargetRules, validateMapping } from '../../core/mapping/validate.ts';
import { Redactor } from '../../core/redactor.ts';
import { PluginRegistry } from '../../core/runtime/plugin-registry.ts';

const LIMITS = { maxBodyBytes: 64 * 1024, maxGroups: 100, channels: new Set(['matrix']) };

describe('the entry field key', () => {
  test('flat or in content, a string or a number; empty is none', () => {
    const key = (fields: Record<string, string>) => {
      const result = parseEntry(fields, LIMITS);
      assert.ok(result.ok, result.ok ? '' : result.reason);
      return result.message.key;
    };
    assert.equal(key({ to: '#a', body: 'x', key: 'orders-api:5xx' }), 'orders-api:5xx');
    assert.equal(key({ content: JSON.stringify({ to: '#a', body: 'x', key: 'disk:db1' }) }), 'disk:db1');
    assert.equal(key({ content: JSON.stringify({ to: '#a', body: 'x', key: 42 }) }), '42');
    assert.equal(key({ to: '#a', body: 'x', key: '' }), undefined);
    assert.equal(key({ to: '#a', body: 'x' }), undefined);
  });

  test('a key that cannot be one is refused with the reason', () => {
    const reason = (fields: Record<string, string>) => {
      const result = parseEntry(fields, LIMITS);
      assert.equal(result.ok, false);
      return (result as { reason: string }).reason;
    };
    assert.equal(reason({ content: JSON.stringify({ to: '#a', body: 'x', key: ['a'] }) }), '`key` must be a string such as "orders-api:5xx"');
    assert.equal(reason({ to: '#a', body: 'x', key: 'k'.repeat(201) }), '`key` must be at most 200 characters without control characters');
    assert.equal(reason({ to: '#a', body: 'x', key: 'a\nb' }), '`key` must be at most 200 characters without control characters');
  });
});

describe('the group option throttle', () => {
  let rules: ReadonlyMap<string, TargetRules>;
  before(async () => {
    rules = (await PluginRegistry.load(resolveConfig({ plugins: { dirs: ['./plugins'], modules: [] } }, {}), {}, new Redactor())).targetRules;
  });
  const validate = (mapping: unknown) => validateMapping({ _id: 'ccs.notifications', mapping }, 'rev-1', rules);

  test('a window as a duration; a reserved key, not a channel', () => {
    const result = validate({ '#admins': { matrix: ['!ops:half-shot.uk'], throttle: { window: '5m' } }, '#users': { include: ['#admins'] } });
    assert.ok(result.ok, result.ok ? '' : result.errors.join('; '));
    assert.deepEqual(result.mapping.groups.get('#admins')!.throttle, { windowMs: 300_000 });
    assert.equal(result.mapping.groups.get('#admins')!.routes.length, 1);
    assert.equal(result.mapping.groups.get('#users')!.throttle, undefined, 'a throttle is its own group\'s, not included');
  });

  test('mistakes are refused whole, with their document path', () => {
    const result = validate({
      '#a': { matrix: ['!ops:half-shot.uk'], throttle: '5m' },
      '#b': { matrix: ['!ops:half-shot.uk'], throttle: { window: 'soon' } },
      '#c': { matrix: ['!ops:half-shot.uk'], throttle: { window: '100ms' } },
      '#d': { matrix: ['!ops:half-shot.uk'], throttle: { window: '5m', max: 3 } },
      '#e': { matrix: ['!ops:half-shot.uk'], throttle: {} },
    });
    assert.equal(result.ok, false);
    assert.deepEqual((result as { errors: string[] }).errors, [
      'mapping["#a"].throttle: not an object such as {"window": "5m"}',
      'mapping["#b"].throttle.window: "soon" is not a duration such as "30s", "15m" or "2h"',
      'mapping["#c"].throttle.window: "100ms" is outside 1s to 7d',
      'mapping["#d"].throttle.max: not a throttle option; the only one is "window", such as {"window": "5m"}',
      'mapping["#e"].throttle.window: missing: a duration such as "15m"',
    ]);
  });
});

describe('the digest message', () => {
  const base = { group: '#admins', key: 'orders-api:5xx', opened: Date.UTC(2026, 0, 1, 9, 0, 0), first: Date.UTC(2026, 0, 1, 9, 0, 5), last: Date.UTC(2026, 0, 1, 9, 4, 59) };

  test('the count leads the subject; the latest message follows in full', () => {
    const digest = digestMessage({ ...base, count: 12, latest: { subject: 'Orders API failing', body: '**/api/orders** failed', format: 'markdown' } });
    assert.equal(digest.subject, '12 more: Orders API failing');
    assert.equal(digest.format, 'html');
    assert.match(digest.body, /^<p><b>12 more<\/b> to #admins with key <code>orders-api:5xx<\/code>, from 2026-01-01 09:00:05 UTC to 2026-01-01 09:04:59 UTC/);
    assert.match(digest.body, /<blockquote><p><b>Orders API failing<\/b><\/p><p><strong>\/api\/orders<\/strong> failed<\/p>\n<\/blockquote>$/);
  });

  test('without a subject, the start of the latest body; the producer\'s text is escaped', () => {
    const digest = digestMessage({ ...base, key: '<k>', count: 1, latest: { body: 'disk <full> on db1', format: 'text' } });
    assert.equal(digest.subject, '1 more: disk <full> on db1');
    assert.match(digest.body, /with key <code>&#60;k&#62;<\/code>, at 2026-01-01 09:04:59 UTC/);
    assert.match(digest.body, /<blockquote>disk &#60;full&#62; on db1<\/blockquote>/);
  });
});
