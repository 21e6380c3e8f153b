/** The `m.room.message` content of a notification. */
import { MATRIX_HTML, type OutboundMessage, escapeHtml, renderBody, renderOnce, sanitizeHtml, subjectLine } from 'notification-hub/plugin-api';

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
  const subject = subjectLine(message.subject);
  const { html, text } = renderBody(message.body, message.format);
  return {
    msgtype,
    body: subject ? `${subject}\n\n${text}` : text,
    format: 'org.matrix.custom.html',
    formatted_body: sanitizeHtml(subject ? `<b>${escapeHtml(subject)}</b><br>${html}` : html, MATRIX_HTML),
  };
}

/**
 * Rendering and sanitizing cost far more than a send: a message fanned out to
 * several rooms, or retried, is rendered once (and a body that cannot be
 * formatted is refused once).
 */
export function contentCache(msgtype: MessageContent['msgtype']): (message: OutboundMessage) => MessageContent {
  return renderOnce((message: OutboundMessage) => messageContent(message, msgtype));
}
