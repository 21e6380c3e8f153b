import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type InboundMessage, type ParseLimits, parseEntry } from '../../core/ingress/parse-entry.ts';

const LIMITS: ParseLimits = { maxBodyBytes: 64 * 1024, maxGroups: 100, channels: new Set(['matrix', 'email', 'webhook']) };
const MIB_50 = 50 * 1024 * 1024;

function accepted(fields: Record<string, string>, limits = LIMITS): InboundMessage {
  const result = parseEntry(fields, limits);
  assert.ok(result.ok, `expected the entry to be accepted, got: ${result.ok ? '' : result.reason}`);
  return result.message;
}

function refused(fields: Record<string, string>, limits = LIMITS): string {
  const result = parseEntry(fields, limits);
  assert.equal(result.ok, false, `expected the entry to be refused, got ${JSON.stringify(result)}`);
  return (result as { reason: string }).reason;
}

const groups = (n: number) => Array.from({ length: n }, (_, i) => `#group-${i}`).join(',');
const nested = (open: string, close: string, depth: number, inner = '') => open.repeat(depth) + inner + close.repeat(depth);

describe('parseEntry: entries that become a message', () => {
  const cases: Array<{ what: string; fields: Record<string, string>; message: Record<string, unknown> }> = [
    {
      what: 'flat fields, the minimum',
      fields: { to: '#admins', body: '<p>disk full</p>' },
      message: { to: ['#admins'], body: '<p>disk full</p>', format: 'html' },
    },
    {
      what: 'flat fields, all of them',
      fields: { to: '#admins,#users', subject: 'Orders API failing', body: 'failed 12 times', format: 'text', id: 'alert-42', channels: 'matrix,email' },
      message: { to: ['#admins', '#users'], subject: 'Orders API failing', body: 'failed 12 times', format: 'text', producerId: 'alert-42', channels: ['matrix', 'email'] },
    },
    {
      what: 'groups with blanks around them, repeated, and an empty item',
      fields: { to: ' #admins , #users,,#admins ', body: 'x' },
      message: { to: ['#admins', '#users'], body: 'x', format: 'html' },
    },
    {
      what: 'the content shape (existing services)',
      fields: { content: '{"to":"#admins","body":"<b>down</b>","subject":"API","format":"markdown"}' },
      message: { to: ['#admins'], body: '<b>down</b>', subject: 'API', format: 'markdown' },
    },
    {
      what: 'content with a list of groups, a numeric id and a list of channels',
      fields: { content: '{"to":["#admins","#users"],"body":"x","id":7,"channels":["email"]}' },
      message: { to: ['#admins', '#users'], body: 'x', format: 'html', producerId: '7', channels: ['email'] },
    },
    {
      what: 'content with unknown keys and a deeply nested one (10,000 levels) beside the message',
      fields: { content: `{"to":"#admins","body":"x","extra":${nested('[', ']', 10_000)}}` },
      message: { to: ['#admins'], body: 'x', format: 'html' },
    },
    {
      what: 'NUL bytes and other control characters are removed from the body; newlines and tabs stay',
      fields: { to: '#admins', body: 'line\u0000 one\nline\ttwo\u0007\u001b[31m' },
      message: { to: ['#admins'], body: 'line one\nline\ttwo[31m', format: 'html' },
    },
    {
      what: 'CR/LF in the subject is flattened (no header injection)',
      fields: { to: '#admins', body: 'x', subject: 'Disk full\r\nBcc: everyone@example.org' },
      message: { to: ['#admins'], body: 'x', subject: 'Disk full Bcc: everyone@example.org', format: 'html' },
    },
    {
      what: 'NUL, tabs and Unicode line separators in the subject become single spaces, trimmed',
      fields: { to: '#admins', body: 'x', subject: '\tDisk\u0000\u0000full\u2028on\u2029db1\n' },
      message: { to: ['#admins'], body: 'x', subject: 'Disk full on db1', format: 'html' },
    },
    {
      what: 'a subject of blanks is no subject',
      fields: { to: '#admins', body: 'x', subject: ' \r\n ' },
      message: { to: ['#admins'], body: 'x', format: 'html' },
    },
    {
      what: 'empty optional fields count as absent',
      fields: { to: '#admins', body: 'x', subject: '', id: '', channels: '' },
      message: { to: ['#admins'], body: 'x', format: 'html' },
    },
    {
      what: 'fields the contract does not know are ignored',
      fields: { to: '#admins', body: 'x', priority: 'high', constructor: 'y', toString: 'z' },
      message: { to: ['#admins'], body: 'x', format: 'html' },
    },
    {
      what: 'a body of exactly the limit',
      fields: { to: '#admins', body: 'x'.repeat(64 * 1024) },
      message: { to: ['#admins'], body: 'x'.repeat(64 * 1024), format: 'html' },
    },
    {
      what: 'exactly the maximum number of groups',
      fields: { to: groups(100), body: 'x' },
      message: { to: groups(100).split(','), body: 'x', format: 'html' },
    },
  ];
  for (const { what, fields, message } of cases) {
    test(what, () => {
      const got = accepted(fields);
      assert.deepEqual({ ...got, ...(got.channels ? { channels: [...got.channels] } : {}) }, message);
    });
  }

  test('group names in `to` are read in one Unicode form (NFC), so one group typed two ways is one group', () => {
    const got = accepted({ to: '#cafe\u0301,#caf\u00e9', body: 'x' });
    assert.deepEqual(got.to, ['#caf\u00e9']);
  });

  test('one group typed in another Unicode form is read in NFC too', () => {
    assert.deepEqual(accepted({ to: '#cafe\u0301', body: 'x' }).to, ['#caf\u00e9']);
    assert.deepEqual(accepted({ to: ' #admins ', body: 'x' }).to, ['#admins']);
  });

  test('a subject is cut to 250 characters', () => {
    const got = accepted({ to: '#admins', body: 'x', subject: 'S'.repeat(10_000) });
    assert.equal(got.subject, 'S'.repeat(250));
  });

  test('a 50 MB subject is cut, not refused', () => {
    const got = accepted({ to: '#admins', body: 'x', subject: 's'.repeat(MIB_50) });
    assert.equal(got.subject?.length, 250);
  });
});

describe('parseEntry: entries refused with a reason a person can act on', () => {
  const cases: Array<{ what: string; fields: Record<string, string>; reason: string | RegExp }> = [
    // Shapes
    { what: 'both shapes at once', fields: { content: '{"to":"#admins","body":"x"}', to: '#admins' }, reason: 'the entry has both a `content` field and flat `to`/`body` fields; send one shape or the other' },
    { what: 'content beside a flat body', fields: { content: '{"to":"#admins","body":"x"}', body: 'y' }, reason: 'the entry has both a `content` field and flat `to`/`body` fields; send one shape or the other' },
    // to
    { what: 'no `to`', fields: { body: 'x' }, reason: '`to` is missing or empty: address the message to a group such as #admins' },
    { what: 'an empty `to`', fields: { to: '', body: 'x' }, reason: '`to` is missing or empty: address the message to a group such as #admins' },
    { what: 'a `to` of commas and blanks', fields: { to: ' , ,', body: 'x' }, reason: '`to` is missing or empty: address the message to a group such as #admins' },
    { what: '`to` without #', fields: { to: 'admins', body: 'x' }, reason: '`to`: "admins" is not a group name; group names start with # (for example #admins)' },
    { what: 'one group of several without #', fields: { to: '#admins,users', body: 'x' }, reason: '`to`: "users" is not a group name; group names start with # (for example #admins)' },
    { what: 'a group name with a space', fields: { to: '#on call', body: 'x' }, reason: '`to`: "#on call" is not a group name; group names start with # (for example #admins)' },
    { what: 'a long bad group name is shortened in the reason', fields: { to: `admins${'x'.repeat(500)}`, body: 'x' }, reason: `\`to\`: "admins${'x'.repeat(51)}..." is not a group name; group names start with # (for example #admins)` },
    { what: 'a thousand groups', fields: { to: groups(1000), body: 'x' }, reason: '`to` names 1000 groups, over the limit of 100; use a group that includes the others' },
    { what: 'content: `to` a number', fields: { content: '{"to":5,"body":"x"}' }, reason: '`to` must be a string such as "#admins" (or a list of them in `content`)' },
    { what: 'content: `to` a list holding a number', fields: { content: '{"to":["#admins",5],"body":"x"}' }, reason: '`to` must be a string such as "#admins" (or a list of them in `content`)' },
    { what: 'content: `to` an empty list', fields: { content: '{"to":[],"body":"x"}' }, reason: '`to` is missing or empty: address the message to a group such as #admins' },
    // body
    { what: 'no `body`', fields: { to: '#admins' }, reason: '`body` is missing: give the message text' },
    { what: 'an empty `body`', fields: { to: '#admins', body: '' }, reason: '`body` is empty: give the message text' },
    { what: 'a `body` of blanks', fields: { to: '#admins', body: ' \n\t ' }, reason: '`body` is empty: give the message text' },
    { what: 'a `body` of NUL bytes only', fields: { to: '#admins', body: '\u0000\u0000\u0000' }, reason: '`body` is empty: give the message text' },
    { what: 'content: `body` null', fields: { content: '{"to":"#admins","body":null}' }, reason: '`body` is missing: give the message text' },
    { what: 'content: `body` a number', fields: { content: '{"to":"#admins","body":42}' }, reason: '`body` must be a string, not number' },
    { what: 'content: `body` a list', fields: { content: '{"to":"#admins","body":["a","b"]}' }, reason: '`body` must be a string, not an array' },
    { what: 'content: `body` an object', fields: { content: '{"to":"#admins","body":{"html":"x"}}' }, reason: '`body` must be a string, not object' },
    { what: 'a body one byte over the limit', fields: { to: '#admins', body: 'x'.repeat(64 * 1024 + 1) }, reason: '`body` is 65 KiB, over the 64 KiB limit; shorten it or link to the details' },
    { what: 'a body over the limit in bytes, not in characters', fields: { to: '#admins', body: 'é'.repeat(40_000) }, reason: '`body` is 79 KiB, over the 64 KiB limit; shorten it or link to the details' },
    { what: 'a 50 MB body', fields: { to: '#admins', body: 'x'.repeat(MIB_50) }, reason: '`body` is 50.0 MiB, over the 64 KiB limit; shorten it or link to the details' },
    // content
    { what: 'content that is not JSON', fields: { content: 'to=#admins&body=x' }, reason: /^`content` is not valid JSON \(.+\); send a JSON object such as \{"to":"#admins","body":"..."\}$/ },
    { what: 'content that is empty', fields: { content: '' }, reason: '`content` is not valid JSON (Unexpected end of JSON input); send a JSON object such as {"to":"#admins","body":"..."}' },
    { what: 'content cut short', fields: { content: '{"to":"#admins","body":"x' }, reason: /^`content` is not valid JSON \(.*\); send a JSON object such as/ },
    { what: 'content a JSON array', fields: { content: '[{"to":"#admins","body":"x"}]' }, reason: '`content` is JSON array, not an object; send a JSON object such as {"to":"#admins","body":"..."}' },
    { what: 'content a JSON string', fields: { content: '"#admins: disk full"' }, reason: '`content` is JSON string, not an object; send a JSON object such as {"to":"#admins","body":"..."}' },
    { what: 'content a JSON number', fields: { content: '42' }, reason: '`content` is JSON number, not an object; send a JSON object such as {"to":"#admins","body":"..."}' },
    { what: 'content arrays nested 10,000 deep', fields: { content: nested('[', ']', 10_000) }, reason: '`content` is JSON array, not an object; send a JSON object such as {"to":"#admins","body":"..."}' },
    { what: 'content objects nested 10,000 deep', fields: { content: nested('{"a":', '}', 10_000, '1') }, reason: '`to` is missing or empty: address the message to a group such as #admins' },
    { what: 'a 50 MB content', fields: { content: 'x'.repeat(MIB_50) }, reason: '`content` is 50.0 MiB, over the 128 KiB limit; shorten the body or link to the details' },
    // subject, format, id, channels
    { what: 'content: `subject` a number', fields: { content: '{"to":"#admins","body":"x","subject":5}' }, reason: '`subject` must be a string' },
    { what: 'an unknown format', fields: { to: '#admins', body: 'x', format: 'rtf' }, reason: '`format` "rtf" is not one of html, text, markdown' },
    { what: 'a format in capitals', fields: { to: '#admins', body: 'x', format: 'HTML' }, reason: '`format` "HTML" is not one of html, text, markdown' },
    { what: 'content: a format that is a number', fields: { content: '{"to":"#admins","body":"x","format":1}' }, reason: '`format` "1" is not one of html, text, markdown' },
    { what: 'an id over 200 characters', fields: { to: '#admins', body: 'x', id: 'i'.repeat(201) }, reason: '`id` must be at most 200 characters without control characters' },
    { what: 'an id with a newline', fields: { to: '#admins', body: 'x', id: 'alert\n42' }, reason: '`id` must be at most 200 characters without control characters' },
    { what: 'content: an id that is true', fields: { content: '{"to":"#admins","body":"x","id":true}' }, reason: '`id` must be a string' },
    { what: 'an unknown channel in `channels`, the known ones listed', fields: { to: '#admins', body: 'x', channels: 'matrix,sms' }, reason: '`channels`: no channel is named "sms" (known: matrix, email, webhook)' },
    { what: '`channels` of commas only', fields: { to: '#admins', body: 'x', channels: ' , ' }, reason: '`channels` must be a comma list of channel names such as "matrix,email"' },
    { what: 'content: `channels` a number', fields: { content: '{"to":"#admins","body":"x","channels":3}' }, reason: '`channels` must be a comma list of channel names such as "matrix,email"' },
  ];
  for (const { what, fields, reason } of cases) {
    test(what, () => {
      const got = refused(fields);
      if (typeof reason === 'string') assert.equal(got, reason);
      else assert.match(got, reason);
      assert.ok(got.length < 300, `a reason a person reads: ${got.length} characters`);
    });
  }

  test('the limits come from the config', () => {
    const limits: ParseLimits = { maxBodyBytes: 1024, maxGroups: 2, channels: new Set() };
    assert.equal(refused({ to: '#a', body: 'x'.repeat(1025) }, limits), '`body` is 2 KiB, over the 1 KiB limit; shorten it or link to the details');
    assert.equal(refused({ content: `{"to":"#a","body":"${'x'.repeat(2100)}"}` }, limits), '`content` is 3 KiB, over the 2 KiB limit; shorten the body or link to the details');
    assert.equal(refused({ to: '#a,#b,#c', body: 'x' }, limits), '`to` names 3 groups, over the limit of 2; use a group that includes the others');
  });
});

describe('fixed bugs stay fixed (parse-entry)', () => {
  test('content `null` is called null, not "JSON object, not an object"', () => {
    const reason = refused({ content: 'null' });
    assert.match(reason, /null/);
    assert.doesNotMatch(reason, /is JSON object, not an object/);
  });

  test('a subject cut at 250 characters does not cut an emoji in half (a lone surrogate shows as \uFFFD)', () => {
    const got = accepted({ to: '#admins', body: 'x', subject: `${'a'.repeat(249)}\u{1F525} fire` });
    assert.ok(got.subject?.isWellFormed(), `subject ends with ${JSON.stringify(got.subject?.slice(-2))}`);
  });
});
