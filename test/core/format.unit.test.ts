/**
 * Formatting under hostile bodies: the bounds on nesting, table size,
 * markdown shape and time (core/format-limits.ts), rendering once per
 * message, and output hygiene (colours, bidi controls) for the shared
 * formatters every channel uses. Each hostile input is one a producer can
 * send under the 64 KiB body limit.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FORMAT_LIMITS, flattenEmphasis, overTime, withinFormatLimits } from '../../core/format-limits.ts';
import {
  EMAIL_HTML, MATRIX_HTML, RetryableError, UNFORMATTABLE, isPermanent, isRetryable, oneLine, renderOnce, sanitizeHtml, subjectLine, toHtml, toPlainText,
  type BodyFormat,
} from '../../core/plugin-api.ts';

/** The poison bodies of the report: each under 64 KiB. */
export const HOSTILE = {
  nestedTags: '<div>'.repeat(12_600),
  nestedInline: '<b>'.repeat(21_000),
  deepQuotes: '>'.repeat(64_000),
  oneLineLists: '1. '.repeat(20_000) + 'a',
  quotesAndLists: '- > '.repeat(15_000) + 'a',
  hugeColspan: '<table><tr><td colspan="1000000">a</td></tr><tr><td>b</td></tr></table>',
  hugeRowspan: '<table><tr><td rowspan="1000000">a</td></tr><tr><td>b</td></tr></table>',
  manySpans: `<table><tr>${'<td colspan="1000">a</td>'.repeat(2000)}</tr></table>`,
};

function refusal(run: () => unknown): Error & { code?: string } {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof Error);
    return err;
  }
  assert.fail('expected the body to be refused');
}

describe('formatting bounds', () => {
  const cases: Array<[string, string, BodyFormat, RegExp]> = [
    ['63 KB of nested <div>', HOSTILE.nestedTags, 'html', /nests its elements 12600 deep, more than the 100 levels/],
    ['nested <b>', HOSTILE.nestedInline, 'html', /nests its elements 21000 deep/],
    ['64k > in markdown', HOSTILE.deepQuotes, 'markdown', /markdown nests quotes or lists 64000 deep/],
    ['20k ordered items on one line', HOSTILE.oneLineLists, 'markdown', /markdown nests quotes or lists 20000 deep/],
    ['quotes in lists on one line', HOSTILE.quotesAndLists, 'markdown', /markdown nests quotes or lists 30000 deep/],
    ['colspan 1,000,000', HOSTILE.hugeColspan, 'html', /tables span 1000001 cells, more than the 20000 the hub lays out/],
    ['rowspan 1,000,000', HOSTILE.hugeRowspan, 'html', /tables span 1000001 cells/],
    ['2,000 cells of colspan 1000', HOSTILE.manySpans, 'html', /tables span 2000000 cells/],
    ['nested tags inside markdown', `# title\n\n${'<blockquote>'.repeat(5000)}`, 'markdown', /nests its elements 5000 deep/],
  ];
  for (const [name, body, format, reason] of cases) {
    test(`${name}: refused at once, permanent, with the reason`, () => {
      const renders = [() => toHtml(body, format), () => toPlainText(body, format)];
      if (format === 'html') renders.push(() => sanitizeHtml(body, EMAIL_HTML));
      for (const render of renders) {
        const err = refusal(render);
        assert.ok(isPermanent(err), `${name}: ${err.name} ${err.message}`);
        assert.equal(err.code, UNFORMATTABLE);
        assert.match(err.message, reason);
        assert.match(err.message, /every attempt would fail the same way$/);
        assert.doesNotMatch(err.message, /\n\s+at /, 'a sentence, not a stack trace');
      }
    });
  }

  test('a body at the bounds is formatted', () => {
    const deepest = `${'<blockquote>'.repeat(FORMAT_LIMITS.nesting - 1)}deep${'</blockquote>'.repeat(FORMAT_LIMITS.nesting - 1)}`;
    assert.match(toPlainText(deepest), /deep/);
    assert.match(sanitizeHtml(deepest), /deep/);
    // Each quote is a <blockquote>, and the text a <p> inside the innermost.
    const quotes = `${'> '.repeat(FORMAT_LIMITS.nesting - 1)}quoted`;
    assert.match(toHtml(quotes, 'markdown'), /quoted/);
    const table = `<table>${`<tr>${'<td>x</td>'.repeat(100)}</tr>`.repeat(20)}</table>`;
    assert.match(toPlainText(table), /x/);
  });

  test('unclosed elements: as many as the nesting bound is formatted, one more is refused', () => {
    // Opening tags only: no more `<` than the bound, so the shape is known without a parse; one more, and it is parsed.
    const at = '<i>'.repeat(FORMAT_LIMITS.nesting);
    assert.match(sanitizeHtml(`${at}x`), /x/);
    assert.match(toPlainText(`${at}x`), /x/);
    const over = `<i>${at}x`;
    for (const render of [() => sanitizeHtml(over), () => toPlainText(over), () => toHtml(over, 'html')]) {
      assert.match(refusal(render).message, new RegExp(`nests its elements ${FORMAT_LIMITS.nesting + 1} deep`));
    }
    // A span makes one cell count for many: a short table with one is parsed, and refused if too wide.
    assert.match(refusal(() => sanitizeHtml('<td ColSpan=30000>x')).message, /tables span 30000 cells/);
  });

  test('markdown `*a` × 32,000 (and `_a`): the marks beyond the bound are shown as typed, quickly', () => {
    for (const mark of ['*', '_']) {
      const body = `${mark}a`.repeat(32_000);
      const text = toPlainText(body, 'markdown');
      assert.equal(text, body, `${mark}: every mark as typed`);
    }
    // Below the bound, emphasis is emphasis.
    assert.equal(toHtml('*a* and _b_', 'markdown'), '<p><em>a</em> and <em>b</em></p>\n');
  });

  test('flattenEmphasis escapes only the paragraphs over the bound, and leaves escapes alone', () => {
    const crowded = `${'*a'.repeat(FORMAT_LIMITS.emphasisPerParagraph)} \\* \\\\`;
    const flattened = flattenEmphasis(`**ok**\n\n${crowded}*`);
    const [first, , second] = flattened.split(/(\n\n)/);
    assert.equal(first, '**ok**');
    assert.ok(second!.startsWith('\\*a\\*a'));
    assert.ok(second!.endsWith(' \\* \\\\\\*'), second!.slice(-12));
  });

  test('a formatting step past the time bound is stopped, and the formatters work on afterwards', () => {
    const err = refusal(() => withinFormatLimits('formatting the body', () => {
      for (;;);
    }, { limitMs: 200 }));
    // Which of the two depends on the CPU this thread got meanwhile (see the next test).
    if (isPermanent(err)) {
      assert.equal(err.code, UNFORMATTABLE);
      assert.equal(err.message, 'formatting the body took longer than 200 ms, the most the hub spends on one body: send it simpler or as format text; every attempt would fail the same way');
    } else {
      assert.ok(isRetryable(err), err.message);
      assert.equal(err.message, 'formatting the body was cut short after 200 ms: the machine was too busy');
    }
    assert.equal(toPlainText('<p>after</p>'), 'after');
    assert.equal(toHtml('*after*', 'markdown'), '<p><em>after</em></p>\n');
  });

  test('over time: the body when the step had the CPU for half the bound or more, a busy machine otherwise', () => {
    const slowBody = overTime('formatting the body', 2000, 1900);
    assert.ok(isPermanent(slowBody));
    assert.equal(slowBody.code, UNFORMATTABLE);
    assert.ok(isPermanent(overTime('formatting the body', 2000, 1000)));
    const busy = overTime('formatting the body', 2000, 300);
    assert.ok(isRetryable(busy));
    assert.equal(busy.code, 'format_busy');
  });

  test('a formatting step that waited rather than ran is not blamed on the body', () => {
    const err = refusal(() => withinFormatLimits('formatting the body', () => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    }, { limitMs: 200 }));
    assert.ok(isRetryable(err), err.message);
    assert.match(err.message, /cut short after 200 ms: the machine was too busy/);
  });

  test('a stack overflow inside a step is the body: permanent, a sentence (watched or not)', () => {
    const recurse = (n: number): number => recurse(n + 1) + 1;
    for (const size of [10, 100_000]) {
      const err = refusal(() => withinFormatLimits('formatting the body', () => recurse(0), { size }));
      assert.ok(isPermanent(err));
      assert.equal(err.message, 'formatting the body failed (Maximum call stack size exceeded); every attempt would fail the same way');
    }
  });

  test('a short body is formatted without the watchdog', () => {
    const unwatched = withinFormatLimits('formatting the body', () => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      return 'done';
    }, { size: FORMAT_LIMITS.watchedFrom - 1, limitMs: 100 });
    assert.equal(unwatched, 'done');
  });
});

describe('render once per message', () => {
  test('the same message renders once; a refusal is remembered and thrown again', () => {
    let renders = 0;
    const render = renderOnce((m: { body: string; format: BodyFormat; subject?: string }) => {
      renders += 1;
      return toPlainText(m.body, m.format);
    });
    const message = { body: '<p>hi</p>', format: 'html' as const, subject: 's' };
    assert.equal(render(message), 'hi');
    assert.equal(render({ ...message }), 'hi');
    assert.equal(renders, 1);
    render({ ...message, subject: 't' });
    assert.equal(renders, 2, 'the subject is part of the key');
    const poison = { body: HOSTILE.nestedTags, format: 'html' as const };
    const first = refusal(() => render(poison));
    const again = refusal(() => render(poison));
    assert.equal(renders, 3);
    assert.equal(again, first);
  });

  test('a failure that may pass later is remembered only for a while', async () => {
    let renders = 0;
    const render = renderOnce((m: { body: string; format: BodyFormat }) => {
      renders += 1;
      throw new RetryableError('formatting the body was cut short after 2000 ms: the machine was too busy', { code: 'format_busy' });
    }, { retryAfterMs: 50 });
    const message = { body: 'x', format: 'text' as const };
    for (let i = 0; i < 3; i++) assert.ok(isRetryable(refusal(() => render(message))));
    assert.equal(renders, 1, 'the other targets of the message get the same answer at once');
    await sleep(60);
    refusal(() => render(message));
    assert.equal(renders, 2, 'a later attempt renders again');
  });

  test('bounded: old entries go', () => {
    let renders = 0;
    const render = renderOnce((m: { body: string; format: BodyFormat }) => (renders += 1), { entries: 2 });
    for (const body of ['a', 'b', 'c', 'a']) render({ body, format: 'text' });
    assert.equal(renders, 4);
  });
});

describe('output hygiene', () => {
  const colours = [
    '<font color="expression(alert(1))">x</font>',
    '<font color="red">x</font>',
    '<span data-mx-color="javascript:alert(1)" data-mx-bg-color="url(https://evil)">x</span>',
    '<font data-mx-bg-color="#12345">x</font>',
  ];
  for (const options of [MATRIX_HTML, EMAIL_HTML]) {
    test(`colours: only #RRGGBB is kept (${options === MATRIX_HTML ? 'Matrix' : 'email'})`, () => {
      for (const html of colours) assert.doesNotMatch(sanitizeHtml(html, options), /color/, html);
      assert.equal(
        sanitizeHtml('<font color="#FF0000" data-mx-bg-color="#00ff00">x</font><span data-mx-color=" #0000ff ">y</span><font color="#0a0">z</font>', options),
        '<font color="#FF0000" data-mx-bg-color="#00ff00">x</font><span data-mx-color="#0000ff">y</span><font color="#00aa00">z</font>',
      );
    });
  }

  for (const options of [MATRIX_HTML, EMAIL_HTML]) {
    test(`classes: only a code block's language-* is kept (${options === MATRIX_HTML ? 'Matrix' : 'email'})`, () => {
      assert.equal(
        sanitizeHtml('<pre><code class="language-js evil mx_Spoiler">x</code></pre><code class="xlanguage-js">y</code><span class="language-js">z</span>', options),
        '<pre><code class="language-js">x</code></pre><code>y</code><span>z</span>',
      );
      assert.equal(sanitizeHtml(toHtml('```ts\nconst a = 1;\n```', 'markdown'), options), '<pre><code class="language-ts">const a = 1;\n</code></pre>\n');
    });
  }

  test('email image sizes are numbers', () => {
    assert.equal(sanitizeHtml('<img src="https://x.org/a.png" width="expression(alert(1))" height="20">', EMAIL_HTML), '<img src="https://x.org/a.png" height="20" />');
  });

  test('bidi controls (U+202A–U+202E, U+2066–U+2069) never reach an output, also written as entities', () => {
    const spoof = 'pay <a href="https://evil.example/\u202Egpj.exe">https://bank.example/\u202Etxt.exe</a> \u2066isolate\u2069 \u202Aembed\u202C';
    const controls = /[\u202A-\u202E\u2066-\u2069]/;
    for (const format of ['html', 'markdown', 'text'] as const) {
      assert.doesNotMatch(sanitizeHtml(toHtml(spoof, format)), controls, format);
      assert.doesNotMatch(sanitizeHtml(toHtml(spoof, format), EMAIL_HTML), controls, format);
      assert.doesNotMatch(toPlainText(spoof, format), controls, format);
    }
    assert.doesNotMatch(sanitizeHtml('a&#x202E;b&#8238;c'), controls);
    assert.doesNotMatch(toPlainText('a&#x202E;b&#8238;c'), controls);
    assert.equal(subjectLine(' Invoice\u202E fdp.exe \n'), 'Invoice fdp.exe');
    assert.equal(oneLine('x\u2067y'), 'xy');
  });
});
