import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { type Delivery, type OutboundMessage, isPermanent, isRetryable } from '../../core/plugin-api.ts';
import plugin from '../../plugins/matrix/index.ts';
import type { MatrixSettings } from '../../plugins/matrix/settings.ts';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { pluginContext } from '../support/plugin-context.ts';

let hs: Homeserver;
let bot: { userId: string; accessToken: string; deviceId: string };
let seq = 0;

function delivery(target: string, message: Partial<OutboundMessage> = {}, id = `d-${++seq}`): Delivery {
  return {
    id, messageId: `1-${seq}`, channel: 'matrix', target, attempt: 1,
    message: { to: ['#admins'], body: '<p>Orders API <b>failing</b></p>', format: 'html', ...message },
  };
}

/** A sender against the fake homeserver with the real Redis; everything is closed and removed afterwards. */
async function withSender<T>(
  fn: (s: Awaited<ReturnType<typeof plugin.createSender>>, ctx: Awaited<ReturnType<typeof pluginContext<MatrixSettings>>>) => Promise<T>,
  overrides: Partial<MatrixSettings> = {},
): Promise<T> {
  const settings = { homeserver: hs.url, userId: bot.userId, accessToken: bot.accessToken, deviceId: bot.deviceId, ...overrides };
  const ctx = await pluginContext(plugin, settings as MatrixSettings);
  const sender = await plugin.createSender(ctx);
  try {
    return await fn(sender, ctx);
  } finally {
    await sender.close?.();
    await ctx.close();
  }
}

const signal = () => AbortSignal.timeout(5000);
const count = (pattern: RegExp) => hs.requests().filter((r) => pattern.test(`${r.method} ${decodeURIComponent(r.path)}`)).length;

type Failure = Error & { code?: string; rateLimited?: boolean; retryAfterMs?: number };
async function rejection(promise: Promise<unknown>): Promise<Failure> {
  return promise.then(() => assert.fail('expected a rejection'), (err: Failure) => err);
}

describe('matrix plugin against the fake homeserver', () => {
  before(async () => {
    hs = await startHomeserver();
    bot = hs.registerUser('bot');
    for (const name of ['alice', 'bob', 'carol', 'dave']) hs.registerUser(name);
  });
  afterEach(() => hs.assertNoSpecViolations());
  after(() => hs.close());

  test('delivers to a room id: m.text, plain body, sanitized HTML, event id as receipt', async () => {
    const room = hs.createRoom(bot.userId);
    const receipt = await withSender((s) => s.deliver(delivery(room), signal()));
    const [event, ...more] = hs.messages(room);
    assert.equal(more.length, 0);
    assert.equal(receipt.peerId, event?.event_id);
    assert.equal(event?.sender, bot.userId);
    assert.deepEqual(event?.content, {
      msgtype: 'm.text', body: 'Orders API failing',
      format: 'org.matrix.custom.html', formatted_body: '<p>Orders API <b>failing</b></p>',
    });
  });

  test('a subject is a bold, escaped first line', async () => {
    const room = hs.createRoom(bot.userId);
    await withSender((s) => s.deliver(delivery(room, { subject: 'Disk <full> & "hot"', body: 'line 1\nline 2', format: 'text' }), signal()));
    const content = hs.messages(room)[0]?.content;
    assert.equal(content?.body, 'Disk <full> & "hot"\n\nline 1\nline 2');
    assert.equal(content?.formatted_body, '<b>Disk &lt;full&gt; &amp; "hot"</b><br />line 1<br />line 2');
  });

  test('m.notice when configured', async () => {
    const room = hs.createRoom(bot.userId);
    await withSender((s) => s.deliver(delivery(room), signal()), { msgtype: 'm.notice' });
    assert.equal(hs.messages(room)[0]?.content.msgtype, 'm.notice');
  });

  test('strips scripts, event handlers and javascript: links from formatted_body', async () => {
    const room = hs.createRoom(bot.userId);
    const body = '<p>hi<script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">bad</a> '
      + '<a href="https://example.org/x" onclick="alert(4)">ok</a><span style="color:red" data-mx-color="#f00">c</span></p>';
    await withSender((s) => s.deliver(delivery(room, { body }), signal()));
    const html = String(hs.messages(room)[0]?.content.formatted_body);
    for (const bad of ['<script', 'alert', 'onerror', 'onclick', 'javascript:', '<img', 'style=']) assert.ok(!html.includes(bad), `${bad} in ${html}`);
    assert.match(html, /<a href="https:\/\/example.org\/x">ok<\/a>/);
    // The spec's one colour form: #RRGGBB.
    assert.match(html, /<span data-mx-color="#ff0000">c<\/span>/);
    assert.ok(!String(hs.messages(room)[0]?.content.body).includes('<script'));
  });

  test('resolves an alias through the directory, cached in Redis for an hour', async () => {
    const room = hs.createRoom(bot.userId, { alias: 'ops' });
    const alias = `#ops:${hs.serverName}`;
    const before = count(/GET \/_matrix\/client\/v3\/directory\/room\//);
    await withSender(async (s, ctx) => {
      await s.deliver(delivery(alias), signal());
      const ttl = await ctx.redis.pttl(ctx.key('alias', alias));
      assert.ok(ttl > 3_590_000 && ttl <= 3_600_000, `ttl ${ttl}`);
      assert.equal(await ctx.redis.get(ctx.key('alias', alias)), room);
      // Another worker (a new sender on the same Redis) does not ask the directory again.
      const other = await plugin.createSender(ctx);
      await other.deliver(delivery(alias), signal());
      await other.close?.();
    });
    assert.equal(count(/GET \/_matrix\/client\/v3\/directory\/room\//) - before, 1);
    assert.equal(hs.messages(room).length, 2);
  });

  test('after a permanent failure an alias is resolved again (it may have moved)', async () => {
    const alice = `@alice:${hs.serverName}`;
    const closed = hs.createRoom(alice, { alias: 'moving' });
    const alias = `#moving:${hs.serverName}`;
    await withSender(async (s) => {
      const err = await rejection(s.deliver(delivery(alias), signal()));
      assert.equal(err.code, 'not_in_room');
      assert.match(err.message, new RegExp(`not in room #moving:hs.test \\(${closed}\\)`));
      const open = hs.createRoom(bot.userId);
      hs.setAlias(alias, open);
      await s.deliver(delivery(alias), signal());
      assert.equal(hs.messages(open).length, 1);
    });
  });

  test('an alias that does not exist is permanent', async () => {
    const err = await rejection(withSender((s) => s.deliver(delivery(`#nope:${hs.serverName}`), signal())));
    assert.ok(isPermanent(err));
    assert.equal(err.code, 'M_NOT_FOUND');
    assert.match(err.message, /#nope:hs.test does not exist/);
  });

  test('a user gets a direct room, made once, recorded in m.direct and reused', async () => {
    const alice = `@alice:${hs.serverName}`;
    const creates = count(/POST .*\/createRoom$/);
    await withSender(async (s, ctx) => {
      await s.deliver(delivery(alice), signal());
      const direct = hs.accountData(bot.userId, 'm.direct') as Record<string, string[]>;
      const room = direct[alice]?.[0];
      assert.ok(room);
      assert.equal(hs.membership(room, alice), 'invite');
      assert.equal(hs.events(room).find((e) => e.type === 'm.room.member' && e.state_key === alice)?.content.is_direct, true);
      assert.equal(hs.stateOf(room, 'm.room.join_rules')?.join_rule, 'invite');
      // A second delivery, even after Redis forgot it, finds the room through m.direct.
      await ctx.redis.del(ctx.key('dm', alice));
      const other = await plugin.createSender(ctx);
      await other.deliver(delivery(alice), signal());
      await other.close?.();
      assert.equal(hs.messages(room).length, 2);
      assert.deepEqual(hs.accountData(bot.userId, 'm.direct'), { [alice]: [room] });
    });
    assert.equal(count(/POST .*\/createRoom$/) - creates, 1);
  });

  test('two workers reaching a new user at once make one direct room', async () => {
    const carol = `@carol:${hs.serverName}`;
    const creates = count(/POST .*\/createRoom$/);
    await withSender(async (s, ctx) => {
      const other = await plugin.createSender(ctx);
      const receipts = await Promise.all([s.deliver(delivery(carol), signal()), other.deliver(delivery(carol), signal())]);
      await other.close?.();
      assert.equal(receipts.length, 2);
    });
    assert.equal(count(/POST .*\/createRoom$/) - creates, 1);
    const room = (hs.accountData(bot.userId, 'm.direct') as Record<string, string[]>)[carol]?.[0];
    assert.ok(room);
    assert.equal(hs.messages(room).length, 2);
    assert.equal(Object.keys(hs.accountData(bot.userId, 'm.direct') ?? {}).length >= 2, true, 'earlier entries kept');
  });

  test('the same delivery twice is one event (transaction id from the delivery id)', async () => {
    const room = hs.createRoom(bot.userId);
    const d = delivery(room);
    const [first, second, third] = await withSender(async (s, ctx) => {
      const restarted = await plugin.createSender(ctx);
      const receipts = [await s.deliver(d, signal()), await s.deliver({ ...d, attempt: 2 }, signal()), await restarted.deliver(d, signal())];
      await restarted.close?.();
      return receipts;
    });
    assert.equal(hs.messages(room).length, 1);
    assert.equal(first?.peerId, second?.peerId);
    assert.equal(first?.peerId, third?.peerId);
  });

  test('joins a room it is invited to on the first send', async () => {
    const room = hs.createRoom(`@alice:${hs.serverName}`, { invited: [bot.userId] });
    assert.equal(hs.membership(room, bot.userId), 'invite');
    await withSender((s) => s.deliver(delivery(room), signal()));
    assert.equal(hs.membership(room, bot.userId), 'join');
    assert.equal(hs.messages(room).length, 1);
  });

  test('a room the bot cannot join is permanent, in words', async () => {
    const room = hs.createRoom(`@alice:${hs.serverName}`);
    const err = await rejection(withSender((s) => s.deliver(delivery(room), signal())));
    assert.ok(isPermanent(err));
    assert.equal(err.code, 'not_in_room');
    assert.equal(err.message, `the bot ${bot.userId} is not in room ${room} and cannot join it: invite it `
      + '(the homeserver said M_FORBIDDEN: You are not invited to this room.)');
    const unknown = await rejection(withSender((s) => s.deliver(delivery(`!missing:${hs.serverName}`), signal())));
    assert.ok(isPermanent(unknown));
    assert.match(unknown.message, /is not in room !missing:hs.test and cannot join it/);
  });

  for (const [name, limit, wait] of [
    ['retry_after_ms in the body', { header: false }, 1500],
    ['a Retry-After header only', { header: true, bodyField: false }, 2000],
    ['both: the longer wait', { header: true }, 2000],
  ] as const) {
    test(`rate limited with ${name}: retryable, rate-limited, the server's wait`, async () => {
      const room = hs.createRoom(bot.userId);
      hs.rateLimit({ every: 1, retryAfterMs: 1500, ...limit });
      try {
        const err = await rejection(withSender((s) => s.deliver(delivery(room), signal())));
        assert.ok(isRetryable(err));
        assert.equal(err.rateLimited, true);
        assert.equal(err.retryAfterMs, wait);
        assert.equal(err.code, 'M_LIMIT_EXCEEDED');
        assert.equal(count(new RegExp(`PUT .*/rooms/${room}/send/`)), 1, 'one request: the SDK does not retry on its own');
      } finally {
        hs.rateLimit(undefined);
      }
      assert.equal(hs.messages(room).length, 0);
    });
  }

  test('a 500 is retryable, also when it comes from the encryption check', async () => {
    const room = hs.createRoom(bot.userId);
    hs.failNext(1, { status: 500 }, /\/send\//);
    const err = await rejection(withSender((s) => s.deliver(delivery(room), signal())));
    assert.ok(isRetryable(err) && !err.rateLimited);
    assert.match(err.message, /^sending to !\S+: the homeserver answered 500 M_UNKNOWN: Injected failure/);
    assert.equal(count(new RegExp(`PUT .*/rooms/${room}/send/`)), 1, 'one request: the SDK does not retry on its own');
    hs.failNext(1, { status: 502, errcode: 'M_UNKNOWN' }, /\/state\//);
    const state = await rejection(withSender((s) => s.deliver(delivery(room), signal())));
    assert.ok(isRetryable(state));
    assert.match(state.message, /cannot tell whether room !\S+ is end-to-end encrypted/);
    assert.equal(hs.messages(room).length, 0);
  });

  test('a homeserver that does not answer is retryable when the signal aborts', async () => {
    const room = hs.createRoom(bot.userId);
    hs.failNext(1, 'timeout', /\/send\//);
    const err = await rejection(withSender((s) => s.deliver(delivery(room), AbortSignal.timeout(300))));
    assert.ok(isRetryable(err));
    assert.equal(err.code, 'timeout');
  });

  test('a bad token is permanent and never appears in the error', async () => {
    const room = hs.createRoom(bot.userId, { alias: 'tokens' });
    const token = 'syt_not-a-real-token_0123456789';
    // The directory needs no token (spec: no `security`), so the alias resolves and the next call fails.
    for (const target of [room, `#tokens:${hs.serverName}`, `@dave:${hs.serverName}`]) {
      const err = await rejection(withSender((s) => s.deliver(delivery(target), signal()), { accessToken: token }));
      assert.ok(isPermanent(err), `${target}: ${err.message}`);
      assert.equal(err.code, 'M_UNKNOWN_TOKEN');
      assert.match(err.message, /access token/);
      assert.ok(!inspect(err, { depth: 10 }).includes(token), inspect(err, { depth: 10 }));
    }
  });

  test('an encrypted room is refused and nothing is sent', async () => {
    const room = hs.createRoom(bot.userId, { encrypted: true });
    const err = await rejection(withSender((s) => s.deliver(delivery(room), signal())));
    assert.ok(isPermanent(err));
    assert.equal(err.code, 'encrypted_room');
    assert.match(err.message, /is end-to-end encrypted and this hub has no encryption configured; it will not send plaintext there/);
    assert.equal(hs.messages(room).length, 0);
    assert.equal(count(new RegExp(`PUT .*/rooms/${room}/send/`)), 0);
  });

  /** Requests that ask whether `room` is encrypted: a GET of its state, or a sync asked for the sends waiting (not the long poll). */
  const encryptionChecks = (room: string) => hs.requests().filter((r) =>
    (r.method === 'GET' && decodeURIComponent(r.path).includes(`/rooms/${room}/state/m.room.encryption`))
    || (r.path.endsWith('/sync') && /[?&]timeout=0(&|$)/.test(r.query ?? '') && /[?&]since=/.test(r.query ?? ''))).length;

  test('"not encrypted" is trusted for encryptionCheckTtlMs only; with 0 a room turned encrypted is refused from the very next send', async () => {
    const room = hs.createRoom(bot.userId);
    await withSender(async (s) => {
      await s.deliver(delivery(room), signal());
      const before = encryptionChecks(room);
      for (let i = 0; i < 5; i++) await s.deliver(delivery(room), signal());
      assert.ok(encryptionChecks(room) - before <= 1, `${encryptionChecks(room) - before} checks for 5 sends within encryptionCheckTtlMs`);
    }, { encryptionCheckTtlMs: 10_000 });
    await withSender(async (s) => {
      await s.deliver(delivery(room), signal());
      hs.setState(room, 'm.room.encryption', { algorithm: 'm.megolm.v1.aes-sha2' });
      const err = await rejection(s.deliver(delivery(room), signal()));
      assert.equal(err.code, 'encrypted_room');
    }, { encryptionCheckTtlMs: 0 });
    assert.equal(hs.messages(room).length, 7);
  });

  test('rooms turned encrypted while messages flow: no plaintext after their m.room.encryption event, the other rooms go on; one sync answers the sends waiting together', async () => {
    const rooms = Array.from({ length: 6 }, () => hs.createRoom(bot.userId));
    const switched = new Set(rooms.slice(0, 3));
    const refused = new Map<string, number>();
    await withSender(async (s) => {
      await Promise.all(rooms.map(async (room, lane) => {
        for (let i = 0; i < 12; i++) {
          try {
            await s.deliver(delivery(room, { body: `lane ${lane} message ${i}` }), signal());
          } catch (err) {
            assert.equal((err as Failure).code, 'encrypted_room', (err as Error).message);
            refused.set(room, (refused.get(room) ?? 0) + 1);
          }
          // Between two sends of its own, while the other rooms' sends run: the next one must see it.
          if (i === 3 + lane && switched.has(room)) hs.setState(room, 'm.room.encryption', { algorithm: 'm.megolm.v1.aes-sha2' });
        }
      }));
    });
    const syncs = encryptionChecks('no such room');
    const gets = rooms.reduce((n, room) => n + encryptionChecks(room), 0) - rooms.length * syncs;
    console.log(`[matrix] 72 sends into 6 rooms, 3 turned encrypted: ${syncs} syncs and ${gets} GETs of a room's encryption state asked`);
    for (const [lane, room] of rooms.entries()) {
      const timeline = hs.events(room);
      const at = timeline.findIndex((e) => e.type === 'm.room.encryption');
      if (!switched.has(room)) {
        assert.equal(at, -1);
        assert.equal(hs.messages(room).length, 12);
        continue;
      }
      assert.ok(at >= 0);
      assert.deepEqual(timeline.slice(at).filter((e) => e.type === 'm.room.message').map((e) => e.content.body), [], `plaintext after ${room} turned encrypted`);
      assert.equal(hs.messages(room).length, 4 + lane);
      assert.equal(refused.get(room), 12 - 4 - lane);
    }
  });
});

describe('matrix targets and settings', () => {
  const valid = [
    '!PxMWbvomtRqGOTsaDK:half-shot.uk', '#ops:half-shot.uk', '@will:half-shot.uk',
    '@will:matrix.org:8448', '!r:1.2.3.4', '!r:1.2.3.4:1234', '#a:[1234:5678::abcd]', '@u:[::1]:8008',
    '@x_y.z=1-/+:hs', '@Historic!User:hs', '#ünïcødé:hs', '!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM',
  ];
  const invalid: Array<[string, RegExp]> = [
    ['ops', /^not a room id, alias or user id/],
    ['will@half-shot.uk', /^not a room id, alias or user id/],
    ['', /^not a room id, alias or user id/],
    ['@will', /^not a valid user id: no ":server" part/],
    ['!abc', /^not a valid room id: no ":server" part/],
    ['@:hs', /^not a valid user id: nothing before ":"/],
    ['@wi ll:hs', /^not a valid user id: "wi ll" has characters/],
    ['#ops team:hs', /^not a valid room alias: "ops team" has characters/],
    ['#ops:', /^not a valid room alias: the server name "" is not a host name/],
    ['#ops:bad_host', /^not a valid room alias: the server name "bad_host" is not a host name/],
    ['@u:hs:99999999', /invalid port/],
    ['@u:hs:', /invalid port/],
    ['!r:[1234:5678::abcd', /unclosed IPv6 literal/],
    ['!r:[not:ipv6]', /invalid IPv6 literal/],
    ['!r:256.1.1.1', /not a valid IPv4 address/],
    [`@${'a'.repeat(250)}:hs.example`, /longer than 255 bytes/],
  ];
  for (const target of valid) {
    test(`validateTarget accepts ${target}`, () => assert.equal(plugin.validateTarget(target), undefined));
  }
  for (const [target, problem] of invalid) {
    test(`validateTarget refuses ${JSON.stringify(target)}`, () => assert.match(plugin.validateTarget(target) ?? '', problem));
  }

  test('normalizeTarget keeps case (Matrix ids are case-sensitive)', () => {
    assert.equal(plugin.normalizeTarget?.(' @Will:Half-Shot.uk '), '@Will:Half-Shot.uk');
  });

  test('settings: defaults, and readable refusals', () => {
    const base = { homeserver: 'https://hs.example', userId: '@bot:hs.example', accessToken: 'secret' };
    const parsed = plugin.settings.schema.parse(base);
    assert.equal(parsed.msgtype, 'm.text');
    assert.equal(parsed.encryptionCheckTtlMs, 0);
    const bad = plugin.settings.schema.safeParse({ ...base, homeserver: 'hs.example', userId: 'bot', msgtype: 'm.emote' });
    assert.equal(bad.success, false);
    const messages = bad.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n') ?? '';
    assert.match(messages, /homeserver: must be an http\(s\) URL/);
    assert.match(messages, /userId: must be a Matrix user id/);
    assert.match(messages, /msgtype: /);
    assert.deepEqual(plugin.settings.secrets, ['accessToken', 'cryptoKey']);
    assert.equal(plugin.settings.env?.accessToken, 'MATRIX_ACCESS_TOKEN');
  });
});
