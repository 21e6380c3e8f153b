/** The `m.room.message` content of a notification. */
import { MATRIX_HTML, type OutboundMessage, escapeHtml, sanitizeHtml, toHtml, toPlainText } from 'notification-hub/plugin-api';

export interface MessageContent {
  msgtype: 'm.text' | 'm.notice';
  body: string;
  format: 'org.matrix.custom.html';
  formatted_body: string;
}

/**
 * `body` is plain text, `formatted_body` HTML cut down to what Matrix clients
 * render safely; a subject becomes a bold first line of both.
 */
export function messageContent(message: OutboundMessage, msgtype: MessageContent['msgtype']): MessageContent {
  const subject = message.subject?.replace(/\s+/g, ' ').trim();
  const text = toPlainText(message.body, message.format);
  const html = toHtml(message.body, message.format);
  return {
    msgtype,
    body: subject ? `${subject}\n\n${text}` : text,
    format: 'org.matrix.custom.html',
    formatted_body: sanitizeHtml(subject ? `<b>${escapeHtml(subject)}</b><br>${html}` : html, MATRIX_HTML),
  };
}

/**
 * Rendering and sanitizing cost far more than a send: a message fanned out to
 * several rooms, or retried, is rendered once. Keyed by everything it reads.
 */
export function contentCache(max = 512): (message: OutboundMessage, msgtype: MessageContent['msgtype']) => MessageContent {
  const cache = new Map<string, MessageContent>();
  return (message, msgtype) => {
    const subject = message.subject ?? '';
    const key = `${msgtype}\0${message.format}\0${subject.length}\0${subject}${message.body}`;
    let content = cache.get(key);
    if (!content) {
      content = messageContent(message, msgtype);
      if (cache.size >= max) cache.delete(cache.keys().next().value as string);
      cache.set(key, content);
    }
    return content;
  };
}
