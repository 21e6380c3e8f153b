/**
 * The text of a post or a direct message: plain text, the subject on the
 * first line, cut to X's limit with an ellipsis. A post is measured the way
 * X measures it, with the official twitter-text library (weighted length
 * 280, every URL 23); a direct message holds 10,000 characters. A cut falls
 * between graphemes (never inside a surrogate pair or an emoji sequence),
 * never inside a URL, and at a word boundary when one is near.
 */
import twitterText from 'twitter-text';
import { type OutboundMessage, subjectLine, toPlainText } from 'notification-hub/plugin-api';

export const ELLIPSIS = '…';
export const DM_MAX_CHARACTERS = 10_000;
/** How far back from the longest cut a word boundary is still preferred. */
const WORD_BOUNDARY_REACH = 30;

/** Code points twitter-text refuses in a post (BOM, non-characters). */
const INVALID = /[\uFEFF\uFFFE\uFFFF]/g;

export function composeText(message: Pick<OutboundMessage, 'subject' | 'body' | 'format'>): string {
  const subject = subjectLine(message.subject);
  const body = toPlainText(message.body, message.format).trim();
  return [subject, body].filter(Boolean).join('\n').replace(INVALID, '');
}

/** A post within X's weighted 280. */
export function fitPost(text: string): string {
  return shorten(text, (candidate) => twitterText.parseTweet(candidate).valid);
}

/** A direct message within 10,000 characters (code points). */
export function fitDirectMessage(text: string): string {
  return shorten(text, (candidate) => [...candidate].length <= DM_MAX_CHARACTERS);
}

/** `text` as is when it fits, else its longest fitting prefix at a permitted cut, plus the ellipsis. */
export function shorten(text: string, fits: (candidate: string) => boolean): string {
  if (fits(text)) return text;
  const cuts = cutPoints(text);
  const candidate = (i: number): string => `${text.slice(0, cuts[i]).trimEnd()}${ELLIPSIS}`;
  // The longest cut that fits: binary search, as a longer prefix never weighs less.
  let lo = 0;
  let hi = cuts.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(candidate(mid))) lo = mid;
    else hi = mid - 1;
  }
  // Prefer ending on a word boundary when one is near the longest cut.
  const longest = cuts[lo]!;
  for (let i = lo; i > 0 && longest - cuts[i]! <= WORD_BOUNDARY_REACH; i--) {
    if (/\s/.test(text[cuts[i]!] ?? '') && fits(candidate(i))) return candidate(i);
  }
  return candidate(lo);
}

/** Offsets where the text may be cut: grapheme boundaries outside URLs (0 always included). */
function cutPoints(text: string): number[] {
  // In text order, walked side by side with the segments: a body of thousands of URLs stays linear.
  const urls = twitterText.extractUrlsWithIndices(text).map((u) => u.indices).sort((a, b) => a[0] - b[0]);
  const segments = new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text);
  const points: number[] = [];
  let next = 0;
  for (const { index } of segments) {
    while (next < urls.length && urls[next]![1] <= index) next += 1;
    const url = urls[next];
    if (!url || index <= url[0]) points.push(index);
  }
  return points;
}
