import { isPermanent } from './errors.ts';
import { withinFormatLimits } from './format-limits.ts';
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
 * formatting once, not once per target. A failure that may pass later (a
 * step cut short on a busy machine) is remembered for `retryAfterMs`, so the
 * message's other targets do not each spend the time bound again. Bounded by
 * entries and by the characters of the bodies kept.
 */
export function renderOnce<Input extends RenderInput, Output>(
  render: (message: Input) => Output,
  limits: { entries?: number; chars?: number; retryAfterMs?: number } = {},
): (message: Input) => Output {
  const maxEntries = limits.entries ?? 256;
  const maxChars = limits.chars ?? 8 * 1024 * 1024;
  const retryAfterMs = limits.retryAfterMs ?? 5000;
  const cache = new Map<string, { value?: Output; error?: unknown; until?: number }>();
  // The worker hands every delivery of one message the same message object: those hit here without building or hashing a key.
  const byMessage = new WeakMap<Input, { value?: Output; error?: unknown; until?: number }>();
  let chars = 0;
  return (message) => {
    const known = byMessage.get(message);
    if (known && (known.until === undefined || performance.now() < known.until)) {
      if ('error' in known) throw known.error;
      return known.value as Output;
    }
    const subject = message.subject ?? '';
    const key = `${message.format}\0${subject.length}\0${subject}${message.body}`;
    let kept = cache.get(key);
    if (kept?.until !== undefined && performance.now() >= kept.until) {
      cache.delete(key);
      chars -= key.length;
      kept = undefined;
    }
    if (!kept) {
      try {
        // One watched step for the whole rendering: the formatting calls inside it run in its time.
        kept = { value: withinFormatLimits('formatting the message', () => render(message), { size: key.length }) };
      } catch (err) {
        kept = isPermanent(err) ? { error: err } : { error: err, until: performance.now() + retryAfterMs };
      }
      cache.set(key, kept);
      chars += key.length;
      for (const [oldest] of cache) {
        if (cache.size <= maxEntries && chars <= maxChars) break;
        cache.delete(oldest);
        chars -= oldest.length;
      }
    }
    byMessage.set(message, kept);
    if ('error' in kept) throw kept.error;
    return kept.value as Output;
  };
}
