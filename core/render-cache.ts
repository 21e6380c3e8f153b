import { isPermanent } from './errors.ts';
import type { BodyFormat } from './format.ts';

/** What a channel's rendering of a message reads. */
export interface RenderInput {
  subject?: string;
  body: string;
  format: BodyFormat;
}

/**
 * `render`, once per message: rendering and sanitizing cost far more than a
 * send, and a message fanned out to many targets of a channel (or retried)
 * reaches its worker in a row. Keyed by everything a rendering reads; a body
 * refused as unformattable is remembered too, so a poison message costs its
 * formatting once, not once per target. Bounded by entries and by the
 * characters of the bodies kept.
 */
export function renderOnce<Input extends RenderInput, Output>(
  render: (message: Input) => Output,
  limits: { entries?: number; chars?: number } = {},
): (message: Input) => Output {
  const maxEntries = limits.entries ?? 256;
  const maxChars = limits.chars ?? 8 * 1024 * 1024;
  const cache = new Map<string, { value?: Output; error?: unknown }>();
  let chars = 0;
  return (message) => {
    const subject = message.subject ?? '';
    const key = `${message.format}\0${subject.length}\0${subject}${message.body}`;
    let kept = cache.get(key);
    if (!kept) {
      try {
        kept = { value: render(message) };
      } catch (err) {
        // A refusal is the message's for good; anything else (a busy machine) may pass next time.
        if (!isPermanent(err)) throw err;
        kept = { error: err };
      }
      cache.set(key, kept);
      chars += key.length;
      for (const [oldest] of cache) {
        if (cache.size <= maxEntries && chars <= maxChars) break;
        cache.delete(oldest);
        chars -= oldest.length;
      }
    }
    if ('error' in kept) throw kept.error;
    return kept.value as Output;
  };
}
