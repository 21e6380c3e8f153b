/** The `escalate` block's per-person refinement (`users`) in the mapping: read, checked with document paths, merged. */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { resolveConfig } from '../../core/config/load-config.ts';
import { escalationFor } from '../../core/escalation/arm.ts';
import { type TargetRules, validateMapping } from '../../core/mapping/validate.ts';
import { Redactor } from '../../core/redactor.ts';
import { PluginRegistry } from '../../core/runtime/plugin-registry.ts';

let rules: ReadonlyMap<string, TargetRules>;
before(async () => {
  const registry = await PluginRegistry.load(resolveConfig({ plugins: { dirs: ['./plugins'], modules: [] } }, {}), {}, new Redactor());
  rules = registry.targetRules;
});
const doc = (mapping: unknown) => ({ _id: 'ccs.notifications', mapping });
const validate = (mapping: unknown) => validateMapping(doc(mapping), 'rev-1', rules);

describe('escalate.users in the mapping', () => {
  test('each person\'s own channels, deduplicated; a block of people alone is enough', () => {
    const result = validate({
      '#admins': {
        matrix: ['!ops:half-shot.uk'],
        escalate: {
          after: '15m',
          users: {
            '@will:half-shot.uk': { email: ['will@half-shot.uk', 'Will@Half-Shot.uk'] },
            '@anna:half-shot.uk': { slack: ['U024BE7LH'], email: ['anna@half-shot.uk'] },
          },
        },
      },
    });
    assert.ok(result.ok, result.ok ? '' : result.errors.join('; '));
    const escalate = result.mapping.groups.get('#admins')!.escalate!;
    assert.deepEqual(escalate.routes, []);
    assert.deepEqual([...escalate.users!].map(([u, rs]) => `${u}: ${rs.map((r) => `${r.channel} ${r.target}`).join(', ')}`), [
      '@will:half-shot.uk: email will@half-shot.uk',
      '@anna:half-shot.uk: slack U024BE7LH, email anna@half-shot.uk',
    ]);
  });

  test('mistakes are refused with their document path', () => {
    const result = validate({
      '#a': {
        matrix: ['!ops:half-shot.uk'],
        escalate: {
          after: '1m',
          users: {
            'will smith': { email: ['will@half-shot.uk'] },
            '@anna:half-shot.uk': ['anna@half-shot.uk'],
            '@bob:half-shot.uk': { email: ['not an address'], sms: ['+4912345'] },
            '@carol:half-shot.uk': {},
          },
        },
      },
      '#b': { matrix: ['!ops:half-shot.uk'], escalate: { after: '1m', users: ['@will:half-shot.uk'] } },
    });
    assert.equal(result.ok, false);
    const errors = (result as { errors: string[] }).errors;
    const at = '"#a"].escalate.users';
    assert.deepEqual(errors.filter((e) => !e.includes('email[0]')), [
      `mapping[${at}["will smith"]: not a person's id as the watching channel names them, such as "@will:half-shot.uk"`,
      `mapping[${at}["@anna:half-shot.uk"]: not an object of channels such as {"email": ["will@half-shot.uk"]}`,
      `mapping[${at}["@bob:half-shot.uk"].sms: no channel plugin is named "sms" (installed: console, email, matrix, slack, twitter, webhook)`,
      `mapping[${at}["@bob:half-shot.uk"]: names no channel to reach this person through, such as "email": ["will@half-shot.uk"]`,
      `mapping[${at}["@carol:half-shot.uk"]: names no channel to reach this person through, such as "email": ["will@half-shot.uk"]`,
      'mapping["#b"].escalate.users: not an object of people such as {"@will:half-shot.uk": {"email": ["will@half-shot.uk"]}}',
      'mapping["#b"].escalate: names no channel to escalate through, such as "email": ["oncall@example.org"]',
    ]);
    assert.ok(errors.some((e) => e.startsWith(`mapping[${at}["@bob:half-shot.uk"].email[0]: `)));
  });

  test('two groups with people merge each person\'s routes', () => {
    const result = validate({
      '#a': { matrix: ['!a:hs.org'], escalate: { after: '10m', users: { '@will:hs.org': { email: ['will@hs.org'] } } } },
      '#b': { matrix: ['!b:hs.org'], escalate: { after: '5m', email: ['oncall@hs.org'], users: { '@will:hs.org': { slack: ['U024BE7LH'] }, '@anna:hs.org': { email: ['anna@hs.org'] } } } },
    });
    assert.ok(result.ok, result.ok ? '' : result.errors.join('; '));
    const armed = escalationFor(result.mapping, ['#a', '#b'], { body: 'x', format: 'text' }, 0, 1000)!;
    assert.equal(armed.dueAt, 5 * 60_000);
    assert.deepEqual(JSON.parse(armed.fields.routes!), [['email', 'oncall@hs.org']]);
    assert.deepEqual(JSON.parse(armed.fields.users!), { '@will:hs.org': [['email', 'will@hs.org'], ['slack', 'U024BE7LH']], '@anna:hs.org': [['email', 'anna@hs.org']] });
  });
});
