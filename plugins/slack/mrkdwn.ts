/**
 * HTML to Slack mrkdwn (https://docs.slack.dev/messaging/formatting-message-text):
 * `*bold*`, `_italic_`, `~strike~`, `<url|text>`, `` `code` ``, ``` blocks,
 * `>` quotes, bullets and numbers for lists, headings as bold lines, and
 * Slack's escaping of `&`, `<` and `>` in text. The HTML is parsed with
 * htmlparser2 and walked: block elements become paragraphs, everything else
 * is inline text whose whitespace collapses as a browser would collapse it.
 */
import { DomUtils, parseDocument } from 'htmlparser2';
import { type ChildNode, type Element, isTag, isText } from 'domhandler';
import { type OutboundMessage, sanitizeHtml, subjectLine, toHtml } from 'notification-hub/plugin-api';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

/** Slack's escaping: the three characters its message parser gives a meaning to. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/[&<>]/g, (c) => ESCAPES[c] ?? c);
}

/** The whole message as mrkdwn: the subject as a bold first line, then the body. */
export function messageToMrkdwn(message: Pick<OutboundMessage, 'subject' | 'body' | 'format'>): string {
  const body = htmlToMrkdwn(sanitizeHtml(toHtml(message.body, message.format)));
  const subject = subjectLine(message.subject);
  if (!subject) return body;
  const title = `*${escapeMrkdwn(subject)}*`;
  return body ? `${title}\n${body}` : title;
}

/** Sanitized HTML to mrkdwn. */
export function htmlToMrkdwn(html: string): string {
  return paragraphs(parseDocument(html).children, new Set()).join('\n\n');
}

/** Inline marks already open around the current node: Slack does not nest a mark in itself. */
type Marks = ReadonlySet<string>;

const INLINE_MARKS: Record<string, string> = {
  b: '*', strong: '*', i: '_', em: '_', s: '~', strike: '~', del: '~',
};
const BLOCKS = new Set([
  'p', 'div', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'li', 'pre', 'blockquote', 'hr',
  'table', 'caption', 'details', 'summary', 'section', 'article', 'header', 'footer', 'dl', 'dt', 'dd',
]);
const LIST_INDENT = '    ';

/** Block children become paragraphs of their own; runs of inline children between them, one paragraph each. */
function paragraphs(nodes: ChildNode[], marks: Marks): string[] {
  const out: string[] = [];
  let run = '';
  const flush = (): void => {
    const text = tidy(run);
    if (text) out.push(text);
    run = '';
  };
  for (const node of nodes) {
    if (isTag(node) && BLOCKS.has(node.name)) {
      flush();
      out.push(...block(node, marks));
    } else {
      run += inline(node, marks);
    }
  }
  flush();
  return out;
}

function block(el: Element, marks: Marks): string[] {
  switch (el.name) {
    case 'h1': case 'h2': case 'h3': case 'h4': case 'h5': case 'h6': {
      const heading = tidy(mark('*', el, marks));
      return heading ? [heading] : [];
    }
    case 'ul': case 'ol':
      return [list(el, marks)].filter(Boolean);
    case 'pre': {
      // The first newline after <pre> is not content (HTML parsing rules).
      const code = DomUtils.textContent(el).replace(/^\r?\n/, '').replace(/\s+$/, '');
      return code ? [`\`\`\`\n${escapeMrkdwn(code)}\n\`\`\``] : [];
    }
    case 'blockquote': {
      const quoted = paragraphs(el.children, marks).join('\n\n');
      return quoted ? [quoted.split('\n').map((line) => (line ? `> ${line}` : '>')).join('\n')] : [];
    }
    case 'hr':
      return ['──────────'];
    case 'table':
      return [table(el, marks)].filter(Boolean);
    default:
      return paragraphs(el.children, marks);
  }
}

function list(el: Element, marks: Marks): string {
  let n = el.name === 'ol' ? Number.parseInt(el.attribs.start ?? '1', 10) || 1 : 0;
  return el.children
    .filter((child): child is Element => isTag(child) && child.name === 'li')
    .map((li) => {
      const prefix = n ? `${n++}. ` : '• ';
      const [first = '', ...rest] = paragraphs(li.children, marks).join('\n').split('\n');
      return prefix + first + rest.map((line) => `\n${line ? LIST_INDENT + line : ''}`).join('');
    })
    .join('\n');
}

/** Slack has no tables: one line per row, cells separated by a bar. */
function table(el: Element, marks: Marks): string {
  const caption = DomUtils.getElementsByTagName('caption', el, true, 1)[0];
  const rows = DomUtils.getElementsByTagName('tr', el, true).map((tr) =>
    tr.children
      .filter((cell): cell is Element => isTag(cell) && (cell.name === 'td' || cell.name === 'th'))
      .map((cell) => tidy(inlineChildren(cell, marks)).replace(/\n/g, ' '))
      .join(' | '),
  );
  const title = caption ? tidy(mark('*', caption, marks)) : '';
  return [title, ...rows].filter(Boolean).join('\n');
}

function inline(node: ChildNode, marks: Marks): string {
  if (isText(node)) return escapeMrkdwn(collapse(node.data));
  if (!isTag(node)) return '';
  const markChar = INLINE_MARKS[node.name];
  if (markChar) return mark(markChar, node, marks);
  switch (node.name) {
    case 'br': return '\n';
    case 'code': return surround(collapse(DomUtils.textContent(node)), (code) => `\`${escapeMrkdwn(code)}\``);
    case 'a': return link(node, marks);
    default:
      // A block inside an inline element (`<b><p>…</p></b>`) still starts a line of its own.
      return BLOCKS.has(node.name) ? `\n${inlineChildren(node, marks)}\n` : inlineChildren(node, marks);
  }
}

function inlineChildren(el: Element, marks: Marks): string {
  return el.children.map((child) => inline(child, marks)).join('');
}

/** `*x*`: Slack needs the marks against the text, and a mark does not span lines, so each line is marked alone. */
function mark(char: string, el: Element, marks: Marks): string {
  if (marks.has(char)) return inlineChildren(el, marks);
  const inner = inlineChildren(el, new Set([...marks, char]));
  return inner
    .split('\n')
    .map((line) => surround(line, (text) => `${char}${text}${char}`))
    .join('\n');
}

function link(el: Element, marks: Marks): string {
  const href = el.attribs.href;
  if (!href) return inlineChildren(el, marks);
  // Inside <…> a bar ends the address and &, <, > are Slack's own.
  const url = escapeMrkdwn(href.replace(/[|<> ]/g, (c) => encodeURIComponent(c)));
  const text = collapse(DomUtils.textContent(el));
  if (!text.trim()) return `${text}<${url}>`;
  return surround(text, (label) =>
    label === href || `mailto:${label}` === href ? `<${url}>` : `<${url}|${escapeMrkdwn(label)}>`,
  );
}

/** Apply `wrap` to the text without its leading and trailing whitespace, which stays outside. */
function surround(text: string, wrap: (core: string) => string): string {
  const match = /^(\s*)([\s\S]*?)(\s*)$/.exec(text);
  if (!match?.[2]) return text;
  return `${match[1]}${wrap(match[2])}${match[3]}`;
}

/** HTML whitespace collapsing (not `&nbsp;`, which is not HTML whitespace). */
function collapse(text: string): string {
  return text.replace(/[ \t\n\r\f]+/g, ' ');
}

/** A paragraph's inline text: single spaces, no space at the start or end of a line, no leading or trailing blank line. */
function tidy(text: string): string {
  return text
    .split('\n')
    .map((line) => line.replace(/ {2,}/g, ' ').trim())
    .join('\n')
    .replace(/^\n+|\n+$/g, '');
}
