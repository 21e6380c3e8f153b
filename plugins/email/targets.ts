import addressparser from 'nodemailer/lib/addressparser';

/** One mailbox: `a@b.c` or `Name <a@b.c>`. */
export interface Mailbox {
  name: string;
  address: string;
}

export type ParsedMailbox = { mailbox: Mailbox; error?: undefined } | { mailbox?: undefined; error: string };

const EXAMPLE = 'write oncall@example.org or On call <oncall@example.org>';
const LOCAL_PART = /^[^\s@"(),:;<>[\]\\]{1,64}$/u;
const DOMAIN_LABEL = /^[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?$/u;

/**
 * Parse one mailbox, strictly: a bare address or `Name <address>`, nothing
 * around it. Lists, groups, line breaks (header injection) and addresses
 * without a dotted domain are refused with a sentence saying why.
 */
export function parseMailbox(input: string): ParsedMailbox {
  const text = input.trim();
  if (text === '') return { error: `empty: ${EXAMPLE}` };
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u.test(text)) {
    return { error: 'contains a line break or control character' };
  }
  const entries = addressparser(text);
  if (entries.length > 1) return { error: `holds ${entries.length} addresses: list each address as its own entry` };
  const entry = entries[0];
  if (!entry) return { error: `not an email address: ${EXAMPLE}` };
  if (entry.group) return { error: 'is an address group: list each address as its own entry' };
  // addressparser is lenient ("a b@c.d" gives name "a"): accept only the two written forms.
  const bare = !text.includes('<');
  if (bare ? text !== entry.address : !text.endsWith(`<${entry.address}>`)) {
    return { error: `not an email address: ${EXAMPLE}` };
  }
  const at = entry.address.lastIndexOf('@');
  if (at < 0) return { error: `has no @domain: ${EXAMPLE}` };
  const local = entry.address.slice(0, at);
  const domain = entry.address.slice(at + 1);
  if (!LOCAL_PART.test(local)) return { error: `has no valid user part before the @: ${EXAMPLE}` };
  const labels = domain.split('.');
  if (domain.length > 253 || labels.length < 2 || !labels.every((label) => DOMAIN_LABEL.test(label))) {
    return { error: `has no valid domain after the @ (such as example.org)` };
  }
  return { mailbox: { name: entry.name.trim(), address: entry.address } };
}

/** Why a target is not a mailbox, or `undefined`. */
export function validateTarget(target: string): string | undefined {
  return parseMailbox(target).error;
}

/**
 * The lower-cased address alone: `On call <OnCall@X.org>` and `oncall@x.org`
 * are the same inbox, so a message reaching both is sent once. The display
 * name is cosmetic; delivery still uses the target as written.
 */
export function normalizeTarget(target: string): string {
  return parseMailbox(target).mailbox?.address.toLowerCase() ?? target.trim();
}
