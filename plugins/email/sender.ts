import nodemailer from 'nodemailer';
import type { SMTPPoolOptions } from 'nodemailer';
import { PermanentError, type ChannelSender, type PluginContext, renderOnce } from 'notification-hub/plugin-api';
import { authTokensOf, classifySmtpError } from './classify-error.ts';
import { composeMail, renderMailBody } from './message.ts';
import type { EmailSettings } from './settings.ts';
import { parseMailbox, type Mailbox } from './targets.ts';

/** Pool options from the settings; the URL is taken apart here so that nothing else ever holds it whole. */
export function transportOptions(settings: EmailSettings): SMTPPoolOptions & { pool: true } {
  const url = new URL(settings.url);
  const secure = url.protocol === 'smtps:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.');
  return {
    pool: true,
    maxConnections: settings.maxConnections,
    host,
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    // Never a password in clear over the network unless asked for.
    requireTLS: settings.requireTls ?? (url.password !== '' && !loopback),
    auth: url.username
      ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }
      : undefined,
    tls: { rejectUnauthorized: settings.tlsRejectUnauthorized, ca: settings.tlsCa },
    connectionTimeout: settings.connectTimeoutMs,
    greetingTimeout: settings.connectTimeoutMs,
    // The bodies are strings; never let a message make the hub read a file or fetch a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  };
}

function mailbox(text: string, what: string): Mailbox {
  const parsed = parseMailbox(text);
  if (parsed.mailbox) return parsed.mailbox;
  throw new PermanentError(`${what} ${JSON.stringify(text)} ${parsed.error}`, { code: 'bad_address' });
}

export function createEmailSender({ settings, redactor }: PluginContext<EmailSettings>): ChannelSender {
  const transport = nodemailer.createTransport(transportOptions(settings));
  for (const token of authTokensOf(settings.url)) redactor.add(token);
  const from = mailbox(settings.from, 'EMAIL_FROM');
  // Rendered once per message, not per recipient: it is the same mail, and rendering blocks the worker.
  const render = renderOnce(renderMailBody);

  return {
    async deliver(delivery, signal) {
      const to = mailbox(delivery.target, 'the target');
      const mail = composeMail(delivery, from, to, render(delivery.message));
      let info;
      try {
        info = await transport.sendMail({ ...mail, signal });
      } catch (err) {
        throw classifySmtpError(err, redactor);
      }
      if (info.rejected?.length) {
        throw new PermanentError(`the SMTP server refused the recipient ${to.address}: ${info.response ?? ''}`, {
          code: 'smtp_rejected',
        });
      }
      return { peerId: info.messageId, details: { response: info.response ?? '' } };
    },
    async close() {
      transport.close();
    },
  };
}
