import { PermanentError, RetryableError, oneLine, retryAfterMs, toPlainText } from 'notification-hub/plugin-api';

/** The first words of the answer (an HTML error page reads as text), without reading a large body whole. */
async function excerpt(response: Response, max = 200): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < max * 8) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
  } catch {
    // A body cut short still has its first words.
  }
  const html = /html/i.test(response.headers.get('content-type') ?? '') || /^\s*</.test(text);
  return oneLine(html ? toPlainText(text, 'html') : text, max);
}

/**
 * Throw the hub's error for an answer that is not a 2xx: 408, 429 (its wait
 * honoured, not counted as an attempt) and 5xx may pass later; a redirect or
 * any other 4xx will not until the mapping or the receiver changes.
 */
export async function checkResponse(response: Response): Promise<void> {
  const { status, headers } = response;
  if (status >= 200 && status < 300) {
    await response.body?.cancel();
    return;
  }
  const answer = await excerpt(response);
  const message = `the webhook answered ${status}${answer ? `: ${answer}` : ''}`;
  const code = `http_${status}`;
  const wait = retryAfterMs(headers.get('retry-after'));
  if (status === 429) throw new RetryableError(message, { code, rateLimited: true, retryAfterMs: wait });
  if (status === 408 || status >= 500) throw new RetryableError(message, { code, retryAfterMs: wait });
  if (status >= 300 && status < 400) {
    const location = headers.get('location') ?? 'elsewhere';
    throw new PermanentError(`the webhook redirects (${status}) to ${location}: put the final URL in the mapping`, { code });
  }
  throw new PermanentError(message, { code });
}

/** A request that got no answer: a timeout, a shutdown, or a network failure. All may pass later. */
export function requestError(err: unknown, { timeoutMs, aborted }: { timeoutMs: number; aborted: boolean }): RetryableError {
  // The delivery's own signal first: its reason may be a TimeoutError too (the runtime's deadline).
  if (aborted) return new RetryableError('the request was aborted (shutdown or delivery timeout)', { code: 'aborted' });
  if (err instanceof Error && err.name === 'TimeoutError') {
    return new RetryableError(`the webhook did not answer within ${timeoutMs} ms`, { code: 'timeout' });
  }
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const detail = [cause?.code, cause?.message ?? (err instanceof Error ? err.message : String(err))].filter(Boolean).join(' ');
  return new RetryableError(`cannot reach the webhook: ${detail}`, { code: 'network' });
}
