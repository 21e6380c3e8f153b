import { z } from 'notification-hub/plugin-api';
import { parseMailbox } from './targets.ts';

function isSmtpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'smtp:' || url.protocol === 'smtps:') && url.hostname !== '';
  } catch {
    return false;
  }
}

export const settingsSchema = z.object({
  /**
   * `smtp://user:pass@host:587` (upgraded with STARTTLS when the server offers it)
   * or `smtps://user:pass@host:465` (TLS from the first byte). Secret: it holds the password.
   */
  url: z.string().refine(isSmtpUrl, { message: 'must be smtp://user:password@host:port or smtps://user:password@host:port' }),
  /** The sender: `hub@example.org` or `Notification hub <hub@example.org>`. */
  from: z.string().superRefine((value, ctx) => {
    const { error } = parseMailbox(value);
    if (error) ctx.addIssue({ code: 'custom', message: error });
  }),
  /** Pooled connections kept open to the server, so that a burst does not open one per message. */
  maxConnections: z.number().int().min(1).max(50).default(5),
  /**
   * Refuse to log in and send over `smtp://` when the server does not offer STARTTLS.
   * Unset: required whenever the URL holds a password for a host other than loopback.
   */
  requireTls: z.boolean().optional(),
  /** Verify the server's certificate. Turn off only against a test server. */
  tlsRejectUnauthorized: z.boolean().default(true),
  /** PEM certificate(s) of a CA to trust instead of the system's, e.g. a test or internal CA. */
  tlsCa: z.string().optional(),
  /** How long to wait for the TCP connection and for the server's greeting. */
  connectTimeoutMs: z.number().int().positive().default(30_000),
});

export type EmailSettings = z.infer<typeof settingsSchema>;
