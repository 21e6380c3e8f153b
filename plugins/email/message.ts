import { createHash } from 'node:crypto';
import { domainToASCII } from 'node:url';
import type { SendMailOptions } from 'nodemailer';
import { EMAIL_HTML, type RenderInput, renderBody, sanitizeHtml, stripBidiControls, type Delivery } from 'notification-hub/plugin-api';
import type { Mailbox } from './targets.ts';

/** The header that tells a reader (and a support person) which hub delivery a mail was. */
export const DELIVERY_HEADER = 'X-Notification-Hub-Delivery';

const SUBJECT_MAX = 200;
const DEFAULT_SUBJECT_MAX = 78;

/** Header text on one line: every control character (CR/LF included) becomes a space, so no field can start a header. */
export function headerText(text: string, max: number): string {
  const flat = stripBidiControls(text).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/gu, ' ').replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1).trimEnd()}…`;
}

/** `<hash-of-delivery-id@domain>`: the same on every retry, so a receiver can tell a resend from a new mail. */
export function messageIdFor(deliveryId: string, from: Mailbox): string {
  const hash = createHash('sha256').update(deliveryId).digest('hex').slice(0, 40);
  const domain = domainToASCII(from.address.slice(from.address.lastIndexOf('@') + 1)) || 'notification-hub';
  return `<${hash}@${domain}>`;
}

/** What a mail says, the same for every recipient: rendered once per message (see the sender's `renderOnce`). */
export interface MailBody {
  subject: string;
  text: string;
  html: string;
}

export function renderMailBody({ body, format, subject }: RenderInput): MailBody {
  const { html, text } = renderBody(body, format);
  return {
    // Not core's oneLine for the default: it strips tags, and plain text may hold a literal `<x@y>`.
    subject: headerText(subject ?? '', SUBJECT_MAX) || headerText(text, DEFAULT_SUBJECT_MAX) || 'Notification',
    text,
    html: sanitizeHtml(html, EMAIL_HTML),
  };
}

/** The mail for one delivery: multipart/alternative with sanitized HTML and a readable plain-text part. */
export function composeMail(delivery: Delivery, from: Mailbox, to: Mailbox, rendered: MailBody = renderMailBody(delivery.message)): SendMailOptions {
  return {
    from: { name: headerText(from.name, 100), address: from.address },
    to: { name: headerText(to.name, 100), address: to.address },
    ...rendered,
    messageId: messageIdFor(delivery.id, from),
    headers: {
      [DELIVERY_HEADER]: headerText(delivery.id, 200),
      // RFC 3834: keeps vacation responders and auto-replies from answering a notifier.
      'Auto-Submitted': 'auto-generated',
    },
  };
}
