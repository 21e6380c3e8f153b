import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PermanentError, RetryableError, isPermanent, isRetryable } from '../../core/plugin-api.ts';
import { Redactor } from '../../core/redactor.ts';
import { knowSecrets } from '../../core/runtime/plugin-settings.ts';
import { authTokensOf, classifySmtpError } from '../../plugins/email/classify-error.ts';

/** The hub's redactor as a running email channel has it: SMTP_URL known as a secret setting, and the sender's AUTH PLAIN tokens. */
function redactorFor(url: string): Redactor {
  const redactor = new Redactor();
  knowSecrets(['url'], { url }, redactor);
  for (const token of authTokensOf(url)) redactor.add(token);
  return redactor;
}

/** An error shaped the way nodemailer makes them. */
function smtpError(message: string, fields: Record<string, unknown>): Error {
  return Object.assign(new Error(message), fields);
}

const rcpt = (code: number, text: string) =>
  smtpError(`Can't send mail - all recipients were rejected: ${code} ${text}`, {
    code: 'EENVELOPE',
    responseCode: code,
    response: `${code} ${text}`,
    command: 'RCPT TO',
    rejected: ['x@y.example'],
    rejectedErrors: [smtpError(`Recipient command failed: ${code} ${text}`, { code: 'EENVELOPE', responseCode: code, response: `${code} ${text}`, command: 'RCPT TO' })],
  });

const reply = (code: number, text: string, command: string, nodemailerCode = 'EENVELOPE') =>
  smtpError(`Failed: ${code} ${text}`, { code: nodemailerCode, responseCode: code, response: `${code} ${text}`, command });

const network = (code: string, originalCode?: string, extra: Record<string, unknown> = {}) =>
  smtpError(`connect ${originalCode ?? code} 192.0.2.1:587`, { code, originalCode, ...extra });

type Expect = { kind: 'permanent' | 'retryable'; code: string; message?: RegExp };

const table: Array<[string, unknown, Expect]> = [
  ['550 unknown user', rcpt(550, '5.1.1 unknown user <x@y.example>'), { kind: 'permanent', code: 'smtp_550', message: /refused the recipient: 550 5\.1\.1 unknown user <x@y\.example>$/ }],
  ['553 bad sender', reply(553, '5.7.1 sender not allowed', 'MAIL FROM'), { kind: 'permanent', code: 'smtp_553', message: /refused the sender \(check EMAIL_FROM\): 553 5\.7\.1/ }],
  ['554 message refused', reply(554, '5.7.1 spam', 'DATA', 'EMESSAGE'), { kind: 'permanent', code: 'smtp_554', message: /refused the message: 554 5\.7\.1 spam/ }],
  ['535 bad login', reply(535, '5.7.8 authentication failed', 'AUTH PLAIN', 'EAUTH'), { kind: 'permanent', code: 'smtp_535', message: /refused the login \(check the user and password in SMTP_URL\): 535 5\.7\.8/ }],
  ['no STARTTLS while TLS is required', reply(500, 'Error: command not recognized', 'STARTTLS', 'ETLS'), { kind: 'permanent', code: 'smtp_500', message: /refused STARTTLS \(it offers no TLS upgrade: use smtps:\/\/, or set requireTls: false/ }],
  ['503 bad sequence (a new session fixes it)', reply(503, '5.5.1 bad sequence of commands', 'RCPT TO'), { kind: 'retryable', code: 'smtp_503' }],
  ['421 greeting', reply(421, '4.3.2 try later', 'CONN', 'EPROTOCOL'), { kind: 'retryable', code: 'smtp_421', message: /deferred the connection: 421 4\.3\.2 try later/ }],
  ['421 at MAIL FROM', reply(421, '4.7.0 too many connections', 'MAIL FROM'), { kind: 'retryable', code: 'smtp_421' }],
  ['450 mailbox busy', rcpt(450, '4.2.1 mailbox busy'), { kind: 'retryable', code: 'smtp_450', message: /deferred the recipient: 450 4\.2\.1/ }],
  ['451 local error', reply(451, '4.3.0 local error', 'DATA', 'EMESSAGE'), { kind: 'retryable', code: 'smtp_451' }],
  ['452 out of storage', rcpt(452, '4.3.1 insufficient storage'), { kind: 'retryable', code: 'smtp_452' }],
  ['multi-line reply is one line', rcpt(550, '5.1.1 first line\n550 5.1.1 second line'), { kind: 'permanent', code: 'smtp_550', message: /first line 550 5\.1\.1 second line$/ }],
  ['ECONNREFUSED', network('ESOCKET', 'ECONNREFUSED'), { kind: 'retryable', code: 'smtp_connection', message: /ECONNREFUSED/ }],
  ['ECONNRESET', network('ECONNRESET'), { kind: 'retryable', code: 'smtp_connection' }],
  ['connection closed', network('ECONNECTION'), { kind: 'retryable', code: 'smtp_connection' }],
  ['greeting timeout', network('ETIMEDOUT', undefined, { timeoutType: 'GREETING_TIMEOUT' }), { kind: 'retryable', code: 'smtp_connection' }],
  ['DNS failure', network('EDNS', 'ENOTFOUND'), { kind: 'retryable', code: 'smtp_connection' }],
  ['untrusted certificate', network('ESOCKET', 'DEPTH_ZERO_SELF_SIGNED_CERT'), { kind: 'retryable', code: 'smtp_tls', message: /tlsCa/ }],
  ['no credentials', network('ENOAUTH'), { kind: 'permanent', code: 'smtp_enoauth', message: /misconfigured/ }],
  ['aborted by nodemailer', network('EABORT'), { kind: 'retryable', code: 'aborted' }],
  ['AbortError', new DOMException('This operation was aborted', 'AbortError'), { kind: 'retryable', code: 'aborted' }],
  ['anything else', new Error('boom'), { kind: 'retryable', code: 'smtp_error', message: /boom/ }],
  ['not an Error at all', 'weird', { kind: 'retryable', code: 'smtp_error', message: /weird/ }],
];

describe('classifySmtpError', () => {
  for (const [name, input, expected] of table) {
    test(name, () => {
      const err = classifySmtpError(input);
      assert.ok(expected.kind === 'permanent' ? isPermanent(err) : isRetryable(err), `${err.name}: ${err.message}`);
      assert.equal(err.code, expected.code);
      if (expected.message) assert.match(err.message, expected.message);
    });
  }

  test('the hub’s own errors pass through unchanged', () => {
    const permanent = new PermanentError('bad address', { code: 'bad_address' });
    const retryable = new RetryableError('later');
    assert.equal(classifySmtpError(permanent), permanent);
    assert.equal(classifySmtpError(retryable), retryable);
  });

  test('no form of the password survives, and the AUTH command is not copied', () => {
    const url = 'smtp://hub%40example.org:p%40ss%20word!@mail.example.org:587';
    const pass = 'p@ss word!';
    const plain = Buffer.from(`\0hub@example.org\0${pass}`).toString('base64');
    const err = classifySmtpError(
      smtpError(`Invalid login: 535 bad credentials ${plain} for ${url}, ${pass}, ${Buffer.from(pass).toString('base64')}, p%40ss%20word!`, {
        code: 'EAUTH',
        responseCode: 535,
        response: `535 bad credentials ${plain} ${pass}`,
        command: `AUTH PLAIN ${plain}`,
      }),
      redactorFor(url),
    );
    const text = [err.message, JSON.stringify(err), String(err.cause)].join('\n');
    for (const leak of [pass, plain, 'p%40ss%20word!', Buffer.from(pass).toString('base64')]) {
      assert.ok(!text.includes(leak), `leaks ${leak}: ${text}`);
    }
    assert.match(err.message, /535 bad credentials \[redacted\]/);

    const network = classifySmtpError(new Error(`getaddrinfo ENOTFOUND for ${url}`), redactorFor(url));
    assert.ok(!network.message.includes(pass) && !network.message.includes('p%40ss'), network.message);
  });
});
