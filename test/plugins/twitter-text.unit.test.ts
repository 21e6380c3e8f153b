import { test } from 'node:test';
import assert from 'node:assert/strict';
import twitterText from 'twitter-text';
import { ELLIPSIS, composeText, fitDirectMessage, fitPost, shorten } from '../../plugins/twitter/text.ts';

test('text that fits is left as it is', () => {
  const text = `Deploy done ${'https://example.com/'.padEnd(200, 'x')}`;
  assert.equal(fitPost(text), text, 'a long URL still counts 23');
});

test('a post of emoji sequences is cut between graphemes, never inside a pair', () => {
  const family = '👩‍👩‍👧‍👦';
  const text = fitPost(family.repeat(200));
  assert.ok(text.endsWith(ELLIPSIS));
  assert.ok(text.isWellFormed());
  assert.equal(text.slice(0, -1).split(family).join(''), '', 'only whole families before the ellipsis');
  assert.ok(twitterText.parseTweet(text).valid);
});

test('a URL across the limit is dropped whole, not cut', () => {
  const url = 'https://example.com/a/very/long/path/that/should/never/be/cut';
  const text = fitPost(`${'a'.repeat(270)} ${url} tail`);
  assert.equal(text, `${'a'.repeat(270)}${ELLIPSIS}`);
});

test('the cut prefers a word boundary near the limit', () => {
  const text = fitPost('word '.repeat(100));
  assert.ok(text.endsWith(`word${ELLIPSIS}`));
  assert.ok(twitterText.parseTweet(text).weightedLength <= 280);
});

test('CJK weighs double, as X counts it', () => {
  const text = fitPost('漢'.repeat(300));
  assert.equal(twitterText.parseTweet(text).weightedLength <= 280, true);
  assert.ok([...text].length < 145);
});

test('direct messages hold 10,000 characters', () => {
  assert.equal([...fitDirectMessage('😀'.repeat(12_000))].length, 10_000);
  assert.equal(fitDirectMessage('short'), 'short');
});

test('shorten with any measure', () => {
  assert.equal(shorten('one two three', (s) => s.length <= 9), `one two${ELLIPSIS}`);
});

test('compose: subject first, HTML as plain text, links kept', () => {
  assert.equal(
    composeText({ subject: ' Orders\nAPI ', body: '<p><b>failed</b> <a href="https://s.example.com">status</a></p>', format: 'html' }),
    'Orders API\nfailed status [https://s.example.com]',
  );
  assert.equal(composeText({ body: 'plain', format: 'text' }), 'plain');
});
