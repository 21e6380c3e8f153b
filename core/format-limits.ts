/**
 * What formatting one body may cost. Bodies are formatted on the worker's one
 * thread by libraries that recurse and, on some shapes, go quadratic: a body
 * nested ten thousand deep overflows the stack of every one of them, a cell
 * spanning a million columns makes html-to-text lay out a million columns,
 * and unmatched emphasis marks make marked scan the rest of the paragraph for
 * each of them. Those are properties of the message, not of the peer, so a
 * body beyond these bounds is refused with a PermanentError that says why
 * (code `unformattable`): dead-lettered at once, its targets free for the next
 * message, the body kept in the dead letter.
 */
import vm from 'node:vm';
import { PermanentError, RetryableError, UNFORMATTABLE } from './errors.ts';
import { formatLibraries } from './format-libraries.ts';

export const FORMAT_LIMITS = {
  /** Elements inside elements (and quotes and lists inside each other in markdown). */
  nesting: 100,
  /** Table cells laid out, a cell counting as the columns × rows it spans. */
  tableCells: 20_000,
  /** Emphasis marks (`*`, `_`, `~`) in one markdown paragraph before they are shown as typed. */
  emphasisPerParagraph: 500,
  /** Wall time of one formatting step; the CPU it took decides whether that was the body or a busy machine. */
  timeMs: 2_000,
  /**
   * Bodies shorter than this are formatted without the watchdog: whatever
   * their shape they take milliseconds (the worst shapes known cost the
   * square of their size), and the watchdog's thread costs about 0.2 ms a
   * call, more than formatting a short notification.
   */
  watchedFrom: 2048,
};

function unformattable(why: string): PermanentError {
  return new PermanentError(`${why}; every attempt would fail the same way`, { code: UNFORMATTABLE });
}

/** A span attribute as html-to-text reads it (it lays out every column and row asked for, without HTML's caps). */
function span(value: string | undefined): number {
  const n = Number.parseInt(value ?? '', 10);
  return Number.isFinite(n) && n > 1 ? n : 1;
}

/**
 * Refuse HTML nested deeper than {@link FORMAT_LIMITS.nesting} or with larger
 * tables than {@link FORMAT_LIMITS.tableCells}. One pass of htmlparser2's
 * streaming parser (no recursion, linear), which closes elements as the
 * libraries that come after it do.
 */
export function checkHtmlShape(html: string): void {
  if (withinBoundsUnparsed(html)) return;
  let depth = 0;
  let deepest = 0;
  let cells = 0;
  const { Parser } = formatLibraries();
  const parser = new Parser({
    onopentag(name, attribs) {
      depth += 1;
      if (depth > deepest) deepest = depth;
      if (name === 'td' || name === 'th') cells += span(attribs.colspan) * span(attribs.rowspan);
    },
    onclosetag() {
      depth -= 1;
    },
  });
  parser.end(html);
  if (deepest > FORMAT_LIMITS.nesting) {
    throw unformattable(`the body nests its elements ${deepest} deep, more than the ${FORMAT_LIMITS.nesting} levels the hub formats: send it flatter`);
  }
  if (cells > FORMAT_LIMITS.tableCells) {
    throw unformattable(`the body's tables span ${cells} cells, more than the ${FORMAT_LIMITS.tableCells} the hub lays out: send a smaller table, or a link to it`);
  }
}

/**
 * Every element opens with a `<`, and without colspan or rowspan a cell counts
 * one: a body with no more `<` than both bounds allow is within them, no parse
 * needed (most notifications; a rendering checks its HTML twice).
 */
function withinBoundsUnparsed(html: string): boolean {
  const most = Math.min(FORMAT_LIMITS.nesting, FORMAT_LIMITS.tableCells);
  let tags = 0;
  for (let at = html.indexOf('<'); at !== -1; at = html.indexOf('<', at + 1)) if (++tags > most) return false;
  return !/span/i.test(html);
}

/** A container marker at the start of a line: a quote `>`, a bullet, or an ordered item `1.`/`1)`. */
const CONTAINER = /[ \t]*(?:>|(?:[-+*]|\d{1,9}[.)])(?=[ \t]|$))/y;

/** Refuse markdown whose quotes and list items nest (on one line) deeper than {@link FORMAT_LIMITS.nesting}. */
export function checkMarkdownShape(markdown: string): void {
  let deepest = 0;
  for (const line of markdown.split('\n')) {
    CONTAINER.lastIndex = 0;
    let depth = 0;
    while (CONTAINER.exec(line)) depth += 1;
    if (depth > deepest) deepest = depth;
  }
  if (deepest > FORMAT_LIMITS.nesting) {
    throw unformattable(`the markdown nests quotes or lists ${deepest} deep, more than the ${FORMAT_LIMITS.nesting} levels the hub formats: send it flatter`);
  }
}

/**
 * Markdown whose paragraphs hold more than {@link FORMAT_LIMITS.emphasisPerParagraph}
 * emphasis marks, with those paragraphs' marks escaped: they show as typed.
 * marked pairs each opening mark by scanning the rest of its paragraph, so a
 * paragraph of unmatched marks costs the square of their number (`*a` ×
 * 32,000: seconds). Inside a code span an escape shows as a backslash; a
 * paragraph with this many marks is not prose anyway.
 */
export function flattenEmphasis(markdown: string): string {
  const paragraphs = markdown.split(/(\n[ \t]*\n)/);
  let changed = false;
  for (let i = 0; i < paragraphs.length; i += 2) {
    const text = paragraphs[i]!;
    let marks = 0;
    for (let c = 0; c < text.length; c++) {
      const code = text.charCodeAt(c);
      if (code === 42 || code === 95 || code === 126) marks += 1;
    }
    if (marks <= FORMAT_LIMITS.emphasisPerParagraph) continue;
    // An escape pair stays as it is; every other mark gets a backslash.
    paragraphs[i] = text.replace(/\\[\s\S]|[*_~]/g, (m) => (m.length === 2 ? m : `\\${m}`));
    changed = true;
  }
  return changed ? paragraphs.join('') : markdown;
}

/**
 * A step stopped at `limitMs`: the body's doing when the step had the CPU for
 * at least half that time, else a machine too busy to tell (retried, and the
 * attempts still run out).
 */
export function overTime(what: string, limitMs: number, cpuMs: number): PermanentError | RetryableError {
  if (cpuMs >= limitMs / 2) {
    return unformattable(`${what} took longer than ${limitMs} ms, the most the hub spends on one body: send it simpler or as format text`);
  }
  return new RetryableError(`${what} was cut short after ${limitMs} ms: the machine was too busy`, { code: 'format_busy' });
}

/** Formatting steps run inside this context, so that the watchdog of `vm`'s `timeout` can stop them. */
const sandbox = vm.createContext({ task: undefined as (() => unknown) | undefined, result: undefined as unknown });
const runTask = new vm.Script('result = task()');
let running = false;

/**
 * Run one formatting step within {@link FORMAT_LIMITS.timeMs}: past it the
 * step is stopped. When it had the CPU for most of that time the body is what
 * is slow (permanent); when it had not, the machine was busy (retryable). A
 * stack overflow is the body too. Steps inside a step run in the outer one's
 * time; a step of fewer than {@link FORMAT_LIMITS.watchedFrom} characters
 * (`size`) runs unwatched. The libraries load (once) before the time counts.
 */
export function withinFormatLimits<T>(what: string, task: () => T, options: { size?: number; limitMs?: number } = {}): T {
  formatLibraries();
  const { size = Infinity, limitMs = FORMAT_LIMITS.timeMs } = options;
  if (running) return task();
  if (size < FORMAT_LIMITS.watchedFrom) {
    try {
      return task();
    } catch (err) {
      if (err instanceof Error && err.name === 'RangeError') throw unformattable(`${what} failed (${err.message.split('\n')[0]})`);
      throw err;
    }
  }
  running = true;
  const cpuBefore = process.threadCpuUsage();
  sandbox.task = task;
  try {
    runTask.runInContext(sandbox, { timeout: limitMs });
    return sandbox.result as T;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
      const cpu = process.threadCpuUsage(cpuBefore);
      throw overTime(what, limitMs, (cpu.user + cpu.system) / 1000);
    }
    if (err instanceof Error && err.name === 'RangeError') throw unformattable(`${what} failed (${err.message.split('\n')[0]})`);
    throw err;
  } finally {
    running = false;
    sandbox.task = undefined;
    sandbox.result = undefined;
  }
}
