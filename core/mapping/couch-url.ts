import { Redactor } from '../redactor.ts';

/** A CouchDB URL split into what may be shown and what may not: the password. */
export interface CouchUrl {
  /** The URL without its password (`http://admin@host:5984`), for logs and errors. */
  shown: string;
  /** The user name of the URL, `''` when none. */
  user: string;
  /** Blanks the password (as typed, decoded, URL-encoded, base64) out of a text. */
  scrub(text: string): string;
}

export function parseCouchUrl(raw: string): CouchUrl {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Node's own error carries the input, password included.
    throw new Error('the CouchDB URL is not a valid URL (expected http://user:password@host:5984)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`the CouchDB URL must be http or https, not ${url.protocol}`);
  const redactor = new Redactor();
  redactor.addUrl(raw);
  const user = decodeURIComponent(url.username);
  url.password = '';
  return {
    shown: url.href.replace(/\/$/, ''),
    user,
    scrub: (text) => redactor.redact(text),
  };
}
