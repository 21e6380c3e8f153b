import sanitize from 'sanitize-html';
import { compile } from 'html-to-text';
import { marked } from 'marked';
import striptags from 'striptags';

/** How a producer wrote `body`. */
export type BodyFormat = 'html' | 'text' | 'markdown';

const URL_SCHEMES = ['http', 'https', 'mailto'];

/**
 * The HTML subset the Matrix spec recommends for `formatted_body`
 * (client-server API, "m.room.message msgtypes"), minus `img`, whose `mxc:`
 * sources a notifier never has.
 */
export const MATRIX_HTML: sanitize.IOptions = {
  allowedTags: [
    'font', 'del', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'p', 'a', 'ul', 'ol',
    'sup', 'sub', 'li', 'b', 'i', 'u', 'strong', 'em', 's', 'strike', 'code', 'hr', 'br', 'div',
    'table', 'thead', 'tbody', 'tr', 'th', 'td', 'caption', 'pre', 'span', 'details', 'summary',
  ],
  allowedAttributes: {
    font: ['color', 'data-mx-bg-color', 'data-mx-color'],
    span: ['data-mx-bg-color', 'data-mx-color', 'data-mx-spoiler'],
    a: ['href', 'name', 'target'],
    ol: ['start'],
    code: ['class'],
  },
  allowedClasses: { code: ['language-*'] },
  allowedSchemes: URL_SCHEMES,
  allowProtocolRelative: false,
};

/** A conservative subset for email: formatting and links, no scripts, styles, forms or embeds. */
export const EMAIL_HTML: sanitize.IOptions = {
  allowedTags: [...(MATRIX_HTML.allowedTags as string[]), 'img'],
  allowedAttributes: { ...MATRIX_HTML.allowedAttributes, img: ['src', 'alt', 'width', 'height'] },
  allowedClasses: MATRIX_HTML.allowedClasses,
  allowedSchemes: URL_SCHEMES,
  allowedSchemesByTag: { img: ['https'] },
  allowProtocolRelative: false,
};

/** The producer's body as HTML, whatever its format. Not yet sanitized: see {@link sanitizeHtml}. */
export function toHtml(body: string, format: BodyFormat): string {
  if (format === 'html') return body;
  if (format === 'markdown') return marked.parse(body, { async: false, gfm: true, breaks: true });
  return escapeHtml(body).replace(/\r?\n/g, '<br>');
}

/** Sanitize HTML to an allow-list (default: the Matrix subset). Scripts, event handlers and `javascript:`/`data:` links never survive. */
export function sanitizeHtml(html: string, options: sanitize.IOptions = MATRIX_HTML): string {
  return sanitize(html, options);
}

/** A readable plain-text rendering: paragraphs, line breaks, list bullets, links as `text [url]`. */
export function toPlainText(body: string, format: BodyFormat = 'html'): string {
  if (format === 'text') return body;
  return htmlToText(toHtml(body, format)).trim();
}

/** Compiled once: html-to-text builds its selector tree per call otherwise (bench/: 28 % of a worker's CPU). */
const htmlToText = compile({
  wordwrap: false,
  selectors: [
    { selector: 'a', options: { hideLinkHrefIfSameAsText: true, linkBrackets: ['[', ']'] } },
    { selector: 'img', format: 'skip' },
    { selector: 'h1', options: { uppercase: false } },
    { selector: 'h2', options: { uppercase: false } },
    { selector: 'h3', options: { uppercase: false } },
    { selector: 'table', format: 'dataTable' },
  ],
});

/** One line of text, no tags, no control characters, at most `max` characters (with an ellipsis). */
export function oneLine(text: string, max = 120): string {
  const flat = striptags(text).replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1).trimEnd()}…`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
