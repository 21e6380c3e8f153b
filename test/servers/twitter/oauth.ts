/**
 * OAuth 1.0a verification (RFC 5849, HMAC-SHA1), written against the RFC
 * rather than borrowed from a client library: the signature base string is
 * rebuilt from the request as received, the key from the consumer secret and
 * the token secret this server knows, and the signatures compared in
 * constant time. Replayed nonces and stale timestamps are refused too.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface OAuthParties {
  /** Consumer key → consumer secret. */
  consumers: ReadonlyMap<string, string>;
  /** Access token → token secret. */
  tokens: ReadonlyMap<string, string>;
}

export interface SignedRequest {
  method: string;
  /** The base string URI: scheme, host (with a non-default port) and path, no query. */
  baseUri: string;
  query: URLSearchParams;
  /** Parameters of an `application/x-www-form-urlencoded` body; a JSON body is not signed. */
  form?: URLSearchParams;
  authorization: string | undefined;
}

export type Verdict = { ok: true; consumerKey: string; token: string } | { ok: false; reason: string };

const MAX_CLOCK_SKEW_S = 300;

/** RFC 3986 unreserved characters stay, everything else is %XX (RFC 5849 §3.6). */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export class OAuthVerifier {
  readonly #parties: OAuthParties;
  readonly #nonces = new Set<string>();

  constructor(parties: OAuthParties) {
    this.#parties = parties;
  }

  verify(request: SignedRequest, now = Date.now()): Verdict {
    const header = request.authorization;
    if (!header?.startsWith('OAuth ')) return { ok: false, reason: 'no OAuth Authorization header' };
    const oauth = parseHeader(header.slice('OAuth '.length));
    const consumerKey = oauth.get('oauth_consumer_key');
    const token = oauth.get('oauth_token');
    const signature = oauth.get('oauth_signature');
    const timestamp = Number(oauth.get('oauth_timestamp'));
    const nonce = oauth.get('oauth_nonce');
    if (!consumerKey || !token || !signature || !nonce || !Number.isInteger(timestamp)) {
      return { ok: false, reason: 'a required oauth_ parameter is missing' };
    }
    if (oauth.get('oauth_signature_method') !== 'HMAC-SHA1') return { ok: false, reason: 'signature method is not HMAC-SHA1' };
    if (oauth.has('oauth_version') && oauth.get('oauth_version') !== '1.0') return { ok: false, reason: 'oauth_version is not 1.0' };
    const consumerSecret = this.#parties.consumers.get(consumerKey);
    const tokenSecret = this.#parties.tokens.get(token);
    if (consumerSecret === undefined) return { ok: false, reason: 'unknown consumer key' };
    if (tokenSecret === undefined) return { ok: false, reason: 'unknown access token' };
    if (Math.abs(now / 1000 - timestamp) > MAX_CLOCK_SKEW_S) return { ok: false, reason: 'timestamp out of range' };

    const expected = sign(baseString(request, oauth), consumerSecret, tokenSecret);
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature does not match' };

    const seen = `${consumerKey}:${token}:${timestamp}:${nonce}`;
    if (this.#nonces.has(seen)) return { ok: false, reason: 'nonce already used' };
    this.#nonces.add(seen);
    return { ok: true, consumerKey, token };
  }
}

/** `k="v", k2="v2"` → decoded map (RFC 5849 §3.5.1); `realm` is not a parameter. */
function parseHeader(value: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const match of value.matchAll(/([A-Za-z0-9_.~%-]+)="([^"]*)"/g)) {
    const name = decodeURIComponent(match[1]!);
    if (name !== 'realm') params.set(name, decodeURIComponent(match[2]!));
  }
  return params;
}

/** RFC 5849 §3.4.1: method, base string URI, and the normalized parameters (query, form body, oauth_ but the signature). */
function baseString(request: SignedRequest, oauth: Map<string, string>): string {
  const pairs: Array<[string, string]> = [
    ...request.query.entries(),
    ...(request.form?.entries() ?? []),
    ...[...oauth.entries()].filter(([name]) => name !== 'oauth_signature'),
  ].map(([name, value]) => [percentEncode(name), percentEncode(value)]);
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  const normalized = pairs.map(([name, value]) => `${name}=${value}`).join('&');
  return [request.method.toUpperCase(), percentEncode(request.baseUri), percentEncode(normalized)].join('&');
}

function sign(base: string, consumerSecret: string, tokenSecret: string): Buffer {
  const key = `${percentEncode(consumerSecret)}&${percentEncode(tokenSecret)}`;
  return Buffer.from(createHmac('sha1', key).update(base).digest('base64'));
}
