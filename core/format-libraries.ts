/**
 * The HTML libraries formatting uses (sanitize-html, marked, html-to-text,
 * htmlparser2), loaded at first use, synchronously as rendering is: about
 * 20 MB that a hub which renders nothing (no digest, no escalation) never
 * holds. withinFormatLimits (core/format-limits.ts) loads them before it
 * starts counting a step's time, and a channel worker as it starts, so that
 * neither a bounded rendering nor a first message waits for them.
 */
import { createRequire } from 'node:module';
import type * as HtmlToText from 'html-to-text';
import type * as Htmlparser2 from 'htmlparser2';
import type * as Marked from 'marked';
import type sanitize from 'sanitize-html';

export interface FormatLibraries {
  sanitize: typeof sanitize;
  marked: typeof Marked.marked;
  htmlToText: (html: string) => string;
  Parser: typeof Htmlparser2.Parser;
}

const require = createRequire(import.meta.url);
let libraries: FormatLibraries | undefined;

export function formatLibraries(): FormatLibraries {
  return (libraries ??= {
    sanitize: require('sanitize-html') as typeof sanitize,
    marked: (require('marked') as typeof Marked).marked,
    // Compiled once: html-to-text builds its selector tree per call otherwise (bench/: 28 % of a worker's CPU).
    htmlToText: (require('html-to-text') as typeof HtmlToText).compile({
      wordwrap: false,
      selectors: [
        { selector: 'a', options: { hideLinkHrefIfSameAsText: true, linkBrackets: ['[', ']'] } },
        { selector: 'img', format: 'skip' },
        { selector: 'h1', options: { uppercase: false } },
        { selector: 'h2', options: { uppercase: false } },
        { selector: 'h3', options: { uppercase: false } },
        { selector: 'table', format: 'dataTable' },
      ],
    }),
    Parser: (require('htmlparser2') as typeof Htmlparser2).Parser,
  });
}
