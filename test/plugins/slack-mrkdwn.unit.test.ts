import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeMrkdwn, htmlToMrkdwn, messageToMrkdwn } from '../../plugins/slack/mrkdwn.ts';

const cases: Array<[string, string, string]> = [
  ['nested marks, and a mark not nested in itself', '<b><i>both</i></b> <b>out<b>in</b>side</b>', '*_both_* *outinside*'],
  ['whitespace moves outside the marks', 'a<b> bold </b>b <em>it </em>', 'a *bold* b _it_'],
  ['a mark across a line break is marked per line', '<b>line one<br>line two</b>', '*line one*\n*line two*'],
  ['strike', '<del>x</del> <s>y</s> <strike>z</strike>', '~x~ ~y~ ~z~'],
  ['links: bar and > in the address encoded, mailto, empty text', '<a href="https://x.org/a|b>c">t</a> <a href="mailto:a@b.c">a@b.c</a> <a href="https://x.org"></a>', '<https://x.org/a%7Cb%3Ec|t> <mailto:a@b.c> <https://x.org>'],
  ['link text is escaped', '<a href="https://x.org/?a=1&amp;b=2">a &lt; b</a>', '<https://x.org/?a=1&amp;b=2|a &lt; b>'],
  ['headings bold, hr a rule, nbsp kept', '<h1>Title <b>bold</b></h1><hr><p>a&nbsp;b</p>', '*Title bold*\n\n──────────\n\na\u00a0b'],
  ['tables: a line per row', '<table><caption>Pods</caption><tr><th>name</th><th>state</th></tr><tr><td>api</td><td><b>down</b></td></tr></table>', '*Pods*\nname | state\napi | *down*'],
  ['list items with paragraphs', '<ul><li><p>para one</p><p>para two</p></li><li>x</li></ul>', '• para one\n    para two\n• x'],
  ['ordered lists keep their start', '<ol start="9"><li>nine</li><li>ten</li></ol>', '9. nine\n10. ten'],
  ['text between blocks is a paragraph', '<p>a</p>text between<p>b</p>', 'a\n\ntext between\n\nb'],
  ['unknown inline tags keep their text', '<span>red</span> <font color="#f00">font</font> <u>under</u> <sup>2</sup>', 'red font under 2'],
  ['HTML whitespace collapses', '<p>  a \n\t b  </p>\n\n<p>c</p>', 'a b\n\nc'],
  ['code blocks keep their whitespace, escaped', '<pre>\n  x &lt;&lt; 2\n    y\n</pre>', '```\n  x &lt;&lt; 2\n    y\n```'],
  ['a quote of two paragraphs', '<blockquote><p>one</p><p>two</p></blockquote>', '> one\n>\n> two'],
];

for (const [name, html, expected] of cases) {
  test(`mrkdwn: ${name}`, () => assert.equal(htmlToMrkdwn(html), expected));
}

test('mrkdwn: Slack escaping is &, < and > only', () => {
  assert.equal(escapeMrkdwn('a & b < c > d * _ ~ `'), 'a &amp; b &lt; c &gt; d * _ ~ `');
});

test('mrkdwn: the body is sanitized first', () => {
  assert.equal(
    messageToMrkdwn({ body: '<a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)><style>p{}</style><script>evil()</script>', format: 'html' }),
    'x',
  );
});

test('mrkdwn: a subject alone is a bold line', () => {
  assert.equal(messageToMrkdwn({ subject: 'Only  a\ttitle', body: '', format: 'html' }), '*Only a title*');
});
