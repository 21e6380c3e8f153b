import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { resolveConfig } from '../../core/config/load-config.ts';
import { MappingStore } from '../../core/mapping/store.ts';
import { type Mapping, type TargetRules, validateMapping } from '../../core/mapping/validate.ts';
import { FileMappingSource } from '../../core/mapping/file-source.ts';
import { createKeys } from '../../core/redis/keys.ts';
import { Redactor } from '../../core/redactor.ts';
import { PluginRegistry } from '../../core/runtime/plugin-registry.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.ts';

/** The shipped plugins' own target rules, as the hub builds them (an empty environment: validation needs no settings). */
let rules: ReadonlyMap<string, TargetRules>;
before(async () => {
  const registry = await PluginRegistry.load(resolveConfig({ plugins: { dirs: ['./plugins'], modules: [] } }, {}), {}, new Redactor());
  rules = registry.targetRules;
});

function errorsOf(document: unknown): string[] {
  const result = validateMapping(document, 'rev-1', rules);
  assert.equal(result.ok, false, 'the document should be refused');
  return (result as { errors: string[] }).errors;
}

function mappingOf(document: unknown): Mapping {
  const result = validateMapping(document, 'rev-1', rules);
  assert.ok(result.ok, `the document should validate, got: ${result.ok ? '' : result.errors.join('; ')}`);
  return result.mapping;
}

/** `channel target` of every route of a group, in order. */
function targetsOf(mapping: Mapping, group: string): string[] {
  const found = mapping.groups.get(group);
  assert.ok(found, `group ${group} is missing`);
  return found.routes.map((r) => `${r.channel} ${r.target}`);
}

const doc = (mapping: unknown) => ({ _id: 'ccs.notifications', mapping });

describe('validateMapping: a valid document is flattened', () => {
  test('the CONTRACT §2 example validates with every shipped channel', () => {
    const mapping = mappingOf(
      doc({
        '#admins': {
          matrix: ['!PxMWbvomtRqGOTsaDK:half-shot.uk', '#ops:half-shot.uk', '@will:half-shot.uk'],
          email: ['will@half-shot.uk', 'On call <oncall@half-shot.uk>'],
          slack: ['C024BE91L', '#ops'],
          twitter: ['@halfshot', 'post'],
          include: ['#oncall'],
        },
        '#oncall': { webhook: ['https://pager.example.org/hooks/alerts'] },
      }),
    );
    assert.equal(mapping.revision, 'rev-1');
    assert.deepEqual(targetsOf(mapping, '#admins'), [
      'matrix !PxMWbvomtRqGOTsaDK:half-shot.uk',
      'matrix #ops:half-shot.uk',
      'matrix @will:half-shot.uk',
      'email will@half-shot.uk',
      'email On call <oncall@half-shot.uk>',
      'slack C024BE91L',
      'slack #ops',
      'twitter @halfshot',
      'twitter post',
      'webhook https://pager.example.org/hooks/alerts',
    ]);
    assert.deepEqual(targetsOf(mapping, '#oncall'), ['webhook https://pager.example.org/hooks/alerts']);
  });

  test('includes expand transitively, the group\'s own targets first', () => {
    const mapping = mappingOf(
      doc({
        '#a': { email: ['a@example.org'], include: ['#b'] },
        '#b': { email: ['b@example.org'], include: ['#c'] },
        '#c': { email: ['c@example.org'] },
      }),
    );
    assert.deepEqual(targetsOf(mapping, '#a'), ['email a@example.org', 'email b@example.org', 'email c@example.org']);
    assert.deepEqual(targetsOf(mapping, '#b'), ['email b@example.org', 'email c@example.org']);
  });

  test('a group reached twice through includes (a diamond) is not a cycle, and its targets come once', () => {
    const mapping = mappingOf(
      doc({
        '#all': { include: ['#left', '#right'] },
        '#left': { include: ['#shared'] },
        '#right': { include: ['#shared'] },
        '#shared': { matrix: ['@will:half-shot.uk'] },
      }),
    );
    assert.deepEqual(targetsOf(mapping, '#all'), ['matrix @will:half-shot.uk']);
  });

  test('a group with only includes, and a group with nothing, are allowed', () => {
    const mapping = mappingOf(doc({ '#quiet': {}, '#alias': { include: ['#quiet'] } }));
    assert.deepEqual(targetsOf(mapping, '#quiet'), []);
    assert.deepEqual(targetsOf(mapping, '#alias'), []);
  });

  test('an escalate block is read: after, every, repeat and its channels', () => {
    const mapping = mappingOf(
      doc({
        '#admins': {
          matrix: ['#ops:half-shot.uk'],
          escalate: { after: '15m', every: '30m', repeat: 2, email: ['oncall@half-shot.uk'], slack: ['#ops'] },
        },
      }),
    );
    const group = mapping.groups.get('#admins')!;
    assert.deepEqual(targetsOf(mapping, '#admins'), ['matrix #ops:half-shot.uk'], 'escalation targets are not ordinary routes');
    assert.equal(group.escalate?.afterMs, 15 * 60_000);
    assert.equal(group.escalate?.everyMs, 30 * 60_000);
    assert.equal(group.escalate?.repeat, 2);
    assert.deepEqual(group.escalate?.routes.map((r) => `${r.channel} ${r.target}`), ['email oncall@half-shot.uk', 'slack #ops']);
  });

  test('an escalate block without every repeats at its after, and without repeat nags once', () => {
    const mapping = mappingOf(doc({ '#admins': { matrix: ['#ops:half-shot.uk'], escalate: { after: 90_000, email: ['a@example.org'] } } }));
    const escalate = mapping.groups.get('#admins')!.escalate!;
    assert.equal(escalate.afterMs, 90_000);
    assert.equal(escalate.everyMs, 90_000);
    assert.equal(escalate.repeat, 0);
  });
});

describe('validateMapping: the same target is one route', () => {
  const cases: Array<{ what: string; mapping: unknown; group: string; targets: string[] }> = [
    {
      what: 'the same target through two included groups',
      mapping: { '#admins': { include: ['#oncall', '#ops'] }, '#oncall': { matrix: ['@will:half-shot.uk'] }, '#ops': { matrix: ['@will:half-shot.uk'] } },
      group: '#admins',
      targets: ['matrix @will:half-shot.uk'],
    },
    {
      what: 'email addresses differing only in case (Will@X.org, will@x.org, Will <WILL@x.org>)',
      mapping: { '#admins': { email: ['Will@X.org'], include: ['#oncall'] }, '#oncall': { email: ['will@x.org', 'Will <WILL@x.org>'] } },
      group: '#admins',
      targets: ['email Will@X.org'],
    },
    {
      what: 'a Slack channel name in two cases',
      mapping: { '#admins': { slack: ['#Ops', '#ops'] } },
      group: '#admins',
      targets: ['slack #Ops'],
    },
    {
      what: 'an X handle in two cases',
      mapping: { '#admins': { twitter: ['@HalfShot', '@halfshot'] } },
      group: '#admins',
      targets: ['twitter @HalfShot'],
    },
    {
      what: 'a webhook URL written two ways',
      mapping: { '#admins': { webhook: ['HTTPS://Example.org:443/hook', 'https://example.org/hook'] } },
      group: '#admins',
      targets: ['webhook HTTPS://Example.org:443/hook'],
    },
    {
      what: 'Matrix ids are case-sensitive: two users stay two',
      mapping: { '#admins': { matrix: ['@Will:half-shot.uk', '@will:half-shot.uk'] } },
      group: '#admins',
      targets: ['matrix @Will:half-shot.uk', 'matrix @will:half-shot.uk'],
    },
    {
      what: 'the same address in two channels is two routes',
      mapping: { '#admins': { slack: ['#ops'], matrix: ['#ops:half-shot.uk'] } },
      group: '#admins',
      targets: ['slack #ops', 'matrix #ops:half-shot.uk'],
    },
  ];
  for (const { what, mapping, group, targets } of cases) {
    test(what, () => assert.deepEqual(targetsOf(mappingOf(doc(mapping)), group), targets));
  }

  test('escalation targets are deduplicated the same way', () => {
    const mapping = mappingOf(doc({ '#a': { matrix: ['#ops:half-shot.uk'], escalate: { after: '5m', email: ['On call <OnCall@X.org>', 'oncall@x.org'] } } }));
    assert.deepEqual(mapping.groups.get('#a')!.escalate!.routes.map((r) => r.target), ['On call <OnCall@X.org>']);
  });

  test('a route carries its target as written and the receiver as the plugin normalizes it', () => {
    const mapping = mappingOf(doc({ '#a': { email: ['On call <OnCall@X.org>'], webhook: ['HTTP://Example.org/./hook'] } }));
    assert.deepEqual(
      mapping.groups.get('#a')!.routes.map((r) => [r.target, r.receiver]),
      [['On call <OnCall@X.org>', 'oncall@x.org'], ['HTTP://Example.org/./hook', 'http://example.org/hook']],
    );
  });

  test('group names are read in one Unicode form (NFC): a group and an include written decomposed are found composed', () => {
    const mapping = mappingOf(doc({ '#cafe\u0301': { email: ['a@x.org'] }, '#all': { include: ['#cafe\u0301'] } }));
    assert.deepEqual([...mapping.groups.keys()], ['#caf\u00e9', '#all']);
    assert.deepEqual(targetsOf(mapping, '#all'), ['email a@x.org']);
  });
});

describe('validateMapping: every error names its document path', () => {
  const cases: Array<{ what: string; document: unknown; errors: Array<string | RegExp> }> = [
    {
      what: 'one group written twice, in two Unicode forms',
      document: doc({ '#caf\u00e9': { email: ['a@x.org'] }, '#cafe\u0301': { email: ['b@x.org'] } }),
      errors: ['mapping["#cafe\u0301"]: the same group as "#caf\u00e9", written in another Unicode form; write each group once'],
    },
    {
      what: 'a matrix target that is no room id, alias or user id',
      document: doc({ '#admins': { matrix: ['!PxMWbvomtRqGOTsaDK:half-shot.uk', 'will', '@will:half-shot.uk'] } }),
      errors: ['mapping["#admins"].matrix[1]: not a room id, alias or user id (expected !room:server, #alias:server or @user:server)'],
    },
    {
      what: 'a matrix alias without a server',
      document: doc({ '#admins': { matrix: ['#ops'] } }),
      errors: ['mapping["#admins"].matrix[0]: not a valid room alias: no ":server" part (expected #name:server)'],
    },
    {
      what: 'an email target that is two addresses',
      document: doc({ '#admins': { email: ['ok@example.org', 'a@example.org, b@example.org'] } }),
      errors: ['mapping["#admins"].email[1]: holds 2 addresses: list each address as its own entry'],
    },
    {
      what: 'an email target with a header injection',
      document: doc({ '#admins': { email: ['will@example.org\r\nBcc: all@example.org'] } }),
      errors: ['mapping["#admins"].email[0]: contains a line break or control character'],
    },
    {
      what: 'a Slack user by @name',
      document: doc({ '#admins': { slack: ['@will'] } }),
      errors: [/^mapping\["#admins"\]\.slack\[0\]: @will: Slack users are addressed by their member id/],
    },
    {
      what: 'an X handle that is too long',
      document: doc({ '#admins': { twitter: ['@a_handle_much_too_long'] } }),
      errors: ['mapping["#admins"].twitter[0]: @a_handle_much_too_long is not an X handle: after the @, 1 to 15 letters, digits or underscores'],
    },
    {
      what: 'a webhook URL with a password',
      document: doc({ '#admins': { webhook: ['https://user:pw@example.org/hook'] } }),
      errors: ['mapping["#admins"].webhook[0]: holds a user name or password, which would show in logs: sign with WEBHOOK_SECRET instead'],
    },
    {
      what: 'a target that is not a string, and an empty one',
      document: doc({ '#admins': { email: [42, '  '] } }),
      errors: ['mapping["#admins"].email[0]: not a non-empty string', 'mapping["#admins"].email[1]: not a non-empty string'],
    },
    {
      what: 'a channel whose value is not a list',
      document: doc({ '#admins': { email: 'will@example.org' } }),
      errors: ['mapping["#admins"].email: not a list of targets'],
    },
    {
      what: 'an unknown channel, with the installed ones listed',
      document: doc({ '#admins': { telegram: ['@will'] } }),
      errors: ['mapping["#admins"].telegram: no channel plugin is named "telegram" (installed: console, email, matrix, slack, twitter, webhook)'],
    },
    {
      what: 'a channel name in the wrong case',
      document: doc({ '#admins': { Email: ['will@example.org'] } }),
      errors: [/^mapping\["#admins"\]\.Email: no channel plugin is named "Email"/],
    },
    {
      what: 'group names without #, with a space, with a comma',
      document: doc({ admins: {}, '#on call': {}, '#a,#b': {} }),
      errors: [
        'mapping["admins"]: a group name starts with "#" and has no spaces or commas',
        'mapping["#on call"]: a group name starts with "#" and has no spaces or commas',
        'mapping["#a,#b"]: a group name starts with "#" and has no spaces or commas',
      ],
    },
    {
      what: 'a group that is not an object of channels',
      document: doc({ '#list': ['will@example.org'], '#null': null, '#text': 'will@example.org' }),
      errors: [
        'mapping["#list"]: not an object of channels such as {"matrix": [...]}',
        'mapping["#null"]: not an object of channels such as {"matrix": [...]}',
        'mapping["#text"]: not an object of channels such as {"matrix": [...]}',
      ],
    },
    {
      what: 'include that is not a list',
      document: doc({ '#a': { include: '#b' }, '#b': {} }),
      errors: ['mapping["#a"].include: not a list of group names'],
    },
    {
      what: 'include of a group the mapping does not have',
      document: doc({ '#a': { include: ['#b', '#nope', 7] }, '#b': {} }),
      errors: ['mapping["#a"].include[1]: "#nope" is not a group of this mapping', 'mapping["#a"].include[2]: 7 is not a group of this mapping'],
    },
    {
      what: 'include of an inherited object key is not taken for a group',
      document: doc({ '#a': { include: ['constructor', '__proto__'] } }),
      errors: ['mapping["#a"].include[0]: "constructor" is not a group of this mapping', 'mapping["#a"].include[1]: "__proto__" is not a group of this mapping'],
    },
    {
      what: 'a group that includes itself',
      document: doc({ '#a': { email: ['a@example.org'], include: ['#a'] } }),
      errors: ['mapping["#a"].include: a cycle: #a → #a'],
    },
    {
      what: 'a cycle of three groups, named from each of them',
      document: doc({ '#a': { include: ['#b'] }, '#b': { include: ['#c'] }, '#c': { include: ['#a'] } }),
      errors: [
        'mapping["#a"].include: a cycle: #a → #b → #c → #a',
        'mapping["#b"].include: a cycle: #b → #c → #a → #b',
        'mapping["#c"].include: a cycle: #c → #a → #b → #c',
      ],
    },
    {
      what: 'a group that includes a cycle without being in it',
      document: doc({ '#top': { include: ['#a'] }, '#a': { include: ['#b'] }, '#b': { include: ['#a'] } }),
      errors: ['mapping["#top"].include: a cycle: #a → #b → #a', 'mapping["#a"].include: a cycle: #a → #b → #a', 'mapping["#b"].include: a cycle: #b → #a → #b'],
    },
    {
      what: 'escalate that is not an object',
      document: doc({ '#a': { matrix: ['#ops:half-shot.uk'], escalate: ['oncall@example.org'] } }),
      errors: ['mapping["#a"].escalate: not an object such as {"after": "15m", "email": [...]}'],
    },
    {
      what: 'escalate without after',
      document: doc({ '#a': { matrix: ['#ops:half-shot.uk'], escalate: { email: ['oncall@example.org'] } } }),
      errors: ['mapping["#a"].escalate.after: missing: a duration such as "15m"'],
    },
    {
      what: 'escalate with durations that are not durations',
      document: doc({ '#a': { matrix: ['#ops:half-shot.uk'], escalate: { after: 'later', every: 0, email: ['oncall@example.org'] } } }),
      errors: [
        'mapping["#a"].escalate.after: "later" is not a duration such as "30s", "15m" or "2h"',
        'mapping["#a"].escalate.every: 0 is not a duration such as "30s", "15m" or "2h"',
      ],
    },
    {
      what: 'escalate with a repeat out of range, negative, fractional or a string',
      document: doc({
        '#a': { escalate: { after: '1m', repeat: 101, email: ['x@example.org'] } },
        '#b': { escalate: { after: '1m', repeat: -1, email: ['x@example.org'] } },
        '#c': { escalate: { after: '1m', repeat: 1.5, email: ['x@example.org'] } },
        '#d': { escalate: { after: '1m', repeat: '2', email: ['x@example.org'] } },
      }),
      errors: ['a', 'b', 'c', 'd'].map((g) => `mapping["#${g}"].escalate.repeat: not a whole number from 0 to 100`),
    },
    {
      what: 'escalate that names no channel',
      document: doc({ '#a': { matrix: ['#ops:half-shot.uk'], escalate: { after: '15m', repeat: 2 } } }),
      errors: ['mapping["#a"].escalate: names no channel to escalate through, such as "email": ["oncall@example.org"]'],
    },
    {
      what: 'escalate through an unknown channel or a bad target',
      document: doc({ '#a': { matrix: ['#ops:half-shot.uk'], escalate: { after: '15m', sms: ['+4912345'], email: ['not an address'] } } }),
      errors: [
        'mapping["#a"].escalate.sms: no channel plugin is named "sms" (installed: console, email, matrix, slack, twitter, webhook)',
        /^mapping\["#a"\]\.escalate\.email\[0\]: /,
        'mapping["#a"].escalate: names no channel to escalate through, such as "email": ["oncall@example.org"]',
      ],
    },
    {
      what: 'a document that is not an object',
      document: ['#admins'],
      errors: ['(document): not a JSON object'],
    },
    {
      what: 'a document without mapping',
      document: { _id: 'ccs.notifications', groups: {} },
      errors: ['mapping: missing, or not an object of groups such as {"#admins": {...}}'],
    },
    {
      what: 'a mapping that is a list',
      document: { mapping: [{ '#admins': {} }] },
      errors: ['mapping: missing, or not an object of groups such as {"#admins": {...}}'],
    },
  ];
  for (const { what, document, errors } of cases) {
    test(what, () => {
      const found = errorsOf(document);
      assert.equal(found.length, errors.length, `errors: ${JSON.stringify(found, null, 1)}`);
      errors.forEach((expected, i) => (typeof expected === 'string' ? assert.equal(found[i], expected) : assert.match(found[i]!, expected)));
    });
  }

  test('one bad target refuses the whole revision: no group of it is kept', () => {
    const result = validateMapping(doc({ '#good': { email: ['a@example.org'] }, '#bad': { email: ['nope'] } }), 'rev-2', rules);
    assert.equal(result.ok, false);
    assert.equal('mapping' in result, false);
  });

  test('a document with very many mistakes reports at most 20 of them', () => {
    const errors = errorsOf(doc({ '#a': { email: Array.from({ length: 50 }, (_, i) => `bad-${i}`) } }));
    assert.equal(errors.length, 20);
    assert.match(errors[0]!, /^mapping\["#a"\]\.email\[0\]: /);
    assert.match(errors[19]!, /^mapping\["#a"\]\.email\[19\]: /);
  });
});

describe('MappingStore.resolve: two groups of one message reach a target once', () => {
  let redis: Redis;
  const prefix = testPrefix('mapping-validate');
  before(() => {
    redis = new Redis(REDIS_URL);
  });
  after(async () => {
    await dropPrefix(prefix, redis);
    redis.disconnect();
  });

  function store(document: unknown): MappingStore {
    const s = new MappingStore({ redis, keys: createKeys(prefix), logger: pino({ level: 'silent' }), targetRules: rules, mappingSource: new FileMappingSource({ path: '/nonexistent/mapping.json' }) });
    assert.equal(s.apply({ revision: 'rev-1', document }, 'redis'), true, s.lastError);
    return s;
  }

  test('#admins,#oncall sharing will@x.org (written in two cases) gives one email route', () => {
    const s = store(doc({ '#admins': { email: ['Will@X.org', 'ops@x.org'] }, '#oncall': { email: ['will@x.org'], matrix: ['@will:x.org'] } }));
    const { routes, unknown } = s.resolve(['#admins', '#oncall']);
    assert.deepEqual(unknown, []);
    assert.deepEqual(routes.map((r) => `${r.channel} ${r.target}`), ['email Will@X.org', 'email ops@x.org', 'matrix @will:x.org']);
  });

  test('a channels filter keeps only those channels; unknown groups are reported', () => {
    const s = store(doc({ '#admins': { email: ['ops@x.org'], matrix: ['@will:x.org'] } }));
    const { routes, unknown } = s.resolve(['#admins', '#nobody'], new Set(['matrix']));
    assert.deepEqual(routes.map((r) => `${r.channel} ${r.target}`), ['matrix @will:x.org']);
    assert.deepEqual(unknown, ['#nobody']);
  });

  test('a refused revision leaves the last good one in force, and lastError names the path', () => {
    const s = store(doc({ '#admins': { email: ['ops@x.org'] } }));
    assert.equal(s.apply({ revision: 'rev-2', document: doc({ '#admins': { email: ['ops@x.org'], matrix: ['ops'] } }) }, 'redis'), false);
    assert.equal(s.current?.revision, 'rev-1');
    assert.match(s.lastError ?? '', /^revision rev-2 refused: mapping\["#admins"\]\.matrix\[0\]: not a room id, alias or user id/);
  });
});

describe('fixed bugs stay fixed (mapping)', () => {
  test('include expansion is not exponential: 60 groups each including the next two validate (exponential expansion would outlast the test timeout)', () => {
    const mapping: Record<string, unknown> = {};
    const n = 60;
    for (let i = 0; i < n; i += 1) {
      mapping[`#g${i}`] = { email: [`u${i}@example.org`], include: [`#g${i + 1}`, `#g${i + 2}`].filter((g) => Number(g.slice(2)) < n) };
    }
    const result = validateMapping(doc(mapping), 'rev-1', rules);
    assert.ok(result.ok);
    assert.equal(result.mapping.groups.get('#g0')!.routes.length, n);
  });
});
