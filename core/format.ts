import type sanitize from 'sanitize-html';
import striptags from 'striptags';
import { formatLibraries } from './format-libraries.ts';
import { checkHtmlShape, checkMarkdownShape, flattenEmphasis, withinFormatLimits } from './format-limits.ts';

/** How a producer wrote `body`. */
export type BodyFormat = 'html' | 'text' | 'markdown';

const URL_SCHEMES = ['http', 'https', 'mailto'];

/**
 * Bidirectional embeddings, overrides and isolates (U+202A–U+202E,
 * U+2066–U+2069): an override turns `moc.elpmaxe//:sptth` into what looks like
 * a trusted link text. No notification needs them; every output drops them.
 */
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

export function stripBidiControls(text: string): string {
  return text.replace(BIDI_CONTROLS, '');
}

/** The only colour form the Matrix spec allows is `#RRGGBB`: `#RGB` is written out, anything else (`expression(…)`, `red`) dropped. */
function hexColour(value: string): string | undefined {
  const v = value.trim();
  if (/^#[0-9a-f]{6}$/i.test(v)) return v;
  if (/^#[0-9a-f]{3}$/i.test(v)) return `#${[...v.slice(1)].map((c) => c + c).join('')}`;
  return undefined;
}

const COLOUR_ATTRIBUTES = ['color', 'data-mx-color', 'data-mx-bg-color'];

const keepHexColours: sanitize.Transformer = (tagName, attribs) => {
  const kept = { ...attribs };
  for (const name of COLOUR_ATTRIBUTES) {
    if (!(name in kept)) continue;
    const colour = hexColour(kept[name]!);
    if (colour) kept[name] = colour;
    else delete kept[name];
  }
  return { tagName, attribs: kept };
};

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
  // A RegExp, not the glob `language-*`: sanitize-html compiles a glob into a RegExp on every call.
  allowedClasses: { code: [/^language-/] },
  allowedSchemes: URL_SCHEMES,
  allowProtocolRelative: false,
  transformTags: { font: keepHexColours, span: keepHexColours },
};

/** Image sizes in pixels or per cent: no `expression(…)` or other script in an attribute. */
const keepNumericSizes: sanitize.Transformer = (tagName, attribs) => {
  const kept = { ...attribs };
  for (const name of ['width', 'height']) if (name in kept && !/^\d{1,5}%?$/.test(kept[name]!.trim())) delete kept[name];
  return { tagName, attribs: kept };
};

/** A conservative subset for email: formatting and links, no scripts, styles, forms or embeds. */
export const EMAIL_HTML: sanitize.IOptions = {
  allowedTags: [...(MATRIX_HTML.allowedTags as string[]), 'img'],
  allowedAttributes: { ...MATRIX_HTML.allowedAttributes, img: ['src', 'alt', 'width', 'height'] },
  allowedClasses: MATRIX_HTML.allowedClasses,
  allowedSchemes: URL_SCHEMES,
  allowedSchemesByTag: { img: ['https'] },
  allowProtocolRelative: false,
  transformTags: { ...MATRIX_HTML.transformTags, img: keepNumericSizes },
};

/**
 * The producer's body as HTML, whatever its format. Not yet sanitized: see
 * {@link sanitizeHtml}. Throws a PermanentError (code `unformattable`) for a
 * body beyond the formatting bounds (core/format-limits.ts).
 */
export function toHtml(body: string, format: BodyFormat): string {
  return withinFormatLimits('formatting the body', () => bodyToHtml(body, format), { size: body.length });
}

function bodyToHtml(body: string, format: BodyFormat): string {
  if (format === 'html') {
    checkHtmlShape(body);
    return body;
  }
  if (format === 'markdown') {
    checkMarkdownShape(body);
    const html = formatLibraries().marked.parse(flattenEmphasis(body), { async: false, gfm: true, breaks: true });
    checkHtmlShape(html);
    return html;
  }
  return escapeHtml(body).replace(/\r?\n/g, '<br>');
}

/**
 * Sanitize HTML to an allow-list (default: the Matrix subset). Scripts, event
 * handlers, `javascript:`/`data:` links, colours other than `#RRGGBB` and
 * bidi controls never survive. Bounded like {@link toHtml}.
 */
export function sanitizeHtml(html: string, options: sanitize.IOptions = MATRIX_HTML): string {
  return withinFormatLimits(
    'sanitizing the body',
    () => {
      checkHtmlShape(html);
      return stripBidiControls(formatLibraries().sanitize(html, options));
    },
    { size: html.length },
  );
}

/** A readable plain-text rendering: paragraphs, line breaks, list bullets, links as `text [url]`. Bounded like {@link toHtml}. */
export function toPlainText(body: string, format: BodyFormat = 'html'): string {
  if (format === 'text') return stripBidiControls(body);
  return withinFormatLimits('formatting the body as text', () => stripBidiControls(formatLibraries().htmlToText(bodyToHtml(body, format)).trim()), { size: body.length });
}

/**
 * The body as HTML (not yet sanitized) and as plain text, with one markdown
 * pass for both: what a channel that sends both (Matrix, email, a webhook)
 * renders from.
 */
export function renderBody(body: string, format: BodyFormat): { html: string; text: string } {
  return withinFormatLimits(
    'formatting the body',
    () => {
      const html = bodyToHtml(body, format);
      return { html, text: format === 'text' ? stripBidiControls(body) : stripBidiControls(formatLibraries().htmlToText(html).trim()) };
    },
    { size: body.length },
  );
}

/** One line of text, no tags, no control characters, at most `max` characters (with an ellipsis). */
export function oneLine(text: string, max = 120): string {
  const flat = stripBidiControls(striptags(text)).replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1).trimEnd()}…`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A subject as a first line of text: whitespace and control characters folded to single spaces, no bidi controls. */
export function subjectLine(subject: string | undefined): string {
  return stripBidiControls(subject ?? '').replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\s]+/gu, ' ').trim();
}
