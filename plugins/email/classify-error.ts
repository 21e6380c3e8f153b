import { PermanentError, RetryableError, type SecretRedactor, isPermanent, isRetryable } from 'notification-hub/plugin-api';

/** The fields nodemailer puts on its errors (all optional: it depends on where the error arose). */
interface SmtpFailure {
  message?: string;
  code?: string;
  originalCode?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  rejectedErrors?: SmtpFailure[];
}

/** Codes of a connection that failed or went away: the server may well be back later. */
const CONNECTION_CODES = new Set([
  'ECONNECTION', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'EPIPE',
  'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETLS', 'EPROTOCOL',
]);

/** Failures that the same configuration will meet again: fix the settings, then replay. */
const CONFIG_CODES = new Set(['ENOAUTH', 'ECONFIG', 'EMAXRECIPIENTS', 'EREQUIRETLS', 'EFILEACCESS', 'EURLACCESS']);

/** What the server turned down, from the command in flight, and what to check when it is for good. */
function subject(command = ''): { what: string; hint: string } {
  const verb = command.trim().toUpperCase();
  if (verb.startsWith('AUTH')) return { what: 'the login', hint: ' (check the user and password in SMTP_URL)' };
  if (verb.startsWith('RCPT')) return { what: 'the recipient', hint: '' };
  if (verb.startsWith('MAIL')) return { what: 'the sender', hint: ' (check EMAIL_FROM)' };
  if (verb.startsWith('DATA')) return { what: 'the message', hint: '' };
  if (verb === 'CONN') return { what: 'the connection', hint: '' };
  if (verb === 'STARTTLS') return { what: 'STARTTLS', hint: ' (it offers no TLS upgrade: use smtps://, or set requireTls: false to log in and send in clear)' };
  return { what: 'the delivery', hint: '' };
}

/** Node's TLS verification codes: the certificate is untrusted, expired or for another name. */
const CERTIFICATE = /CERT|SIGNATURE|SELF_SIGNED|ALTNAME|ISSUER/;

/**
 * The AUTH PLAIN tokens of the URL's login (base64 of the user and password
 * together): the hub's redactor knows the URL and its password in every
 * other form (as written, URL-encoded, base64 alone as AUTH LOGIN sends it),
 * not these.
 */
export function authTokensOf(smtpUrl: string): string[] {
  try {
    const url = new URL(smtpUrl);
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    if (!pass) return [];
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    return [b64(`\0${user}\0${pass}`), b64(`${user}\0${user}\0${pass}`)];
  } catch {
    return [];
  }
}

/**
 * Map a nodemailer failure to the hub's taxonomy: SMTP 4xx and connection
 * failures may pass later; 5xx replies (but 503, a session out of step) never
 * will. The message keeps the server's own reply and never the password:
 * `command` (which may hold an AUTH line) is not copied, every text is redacted.
 */
export function classifySmtpError(err: unknown, redactor?: SecretRedactor): PermanentError | RetryableError {
  if (isPermanent(err) || isRetryable(err)) return err;
  const failure: SmtpFailure = typeof err === 'object' && err !== null ? (err as SmtpFailure) : { message: String(err) };
  // On one line, every form of the password blanked out.
  const clean = (text: string | undefined) => (redactor?.redact(text ?? '') ?? text ?? '').replace(/\s+/g, ' ').trim();
  // A rejected recipient: the RCPT reply says why, the summary ("all recipients were rejected") does not.
  const source = failure.rejectedErrors?.find((e) => e.responseCode === failure.responseCode) ?? failure;
  const status = source.responseCode ?? failure.responseCode;

  if (status !== undefined && status >= 400 && status < 600) {
    const reply = clean(source.response ?? failure.response ?? failure.message);
    const { what, hint } = subject(source.command ?? failure.command);
    if (status >= 500 && status !== 503) {
      return new PermanentError(`the SMTP server refused ${what}${hint}: ${reply}`, { code: `smtp_${status}` });
    }
    return new RetryableError(`the SMTP server deferred ${what}: ${reply}`, { code: `smtp_${status}` });
  }
  const code = failure.originalCode ?? failure.code ?? '';
  const detail = clean(failure.message) || 'no detail';
  if (CONFIG_CODES.has(failure.code ?? '')) {
    return new PermanentError(`the email channel is misconfigured: ${detail}`, { code: `smtp_${failure.code?.toLowerCase()}` });
  }
  if (CERTIFICATE.test(code)) {
    return new RetryableError(
      `the SMTP server's TLS certificate is not trusted (${code}): ${detail}; to trust a private CA, set the email setting tlsCa`,
      { code: 'smtp_tls' },
    );
  }
  if (CONNECTION_CODES.has(code) || CONNECTION_CODES.has(failure.code ?? '')) {
    return new RetryableError(`cannot talk to the SMTP server (${code}): ${detail}`, { code: 'smtp_connection' });
  }
  if (failure.code === 'EABORT' || (err instanceof Error && err.name === 'AbortError')) {
    return new RetryableError('sending was aborted (shutdown or delivery timeout)', { code: 'aborted' });
  }
  return new RetryableError(`sending failed: ${detail}`, { code: 'smtp_error' });
}
