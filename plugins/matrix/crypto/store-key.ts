/**
 * MATRIX_CRYPTO_KEY as people make it: 32 random bytes written as 64 hex
 * characters (`openssl rand -hex 32`) or as base64 (`openssl rand -base64 32`,
 * URL-safe and unpadded forms too). Both spell the same bytes, so a store made
 * with one form opens with the other.
 */

const HEX = /^[0-9a-f]{64}$/i;
// 32 bytes are 43 base64 characters and one `=` of padding (optional here).
const BASE64 = /^[A-Za-z0-9+/]{43}=?$/;
const BASE64URL = /^[A-Za-z0-9_-]{43}=?$/;

/** What the key is, in words: for every message about it. */
export const STORE_KEY_FORMS = '32 bytes, written as 64 hex characters (openssl rand -hex 32) or in base64 (openssl rand -base64 32)';

/** The 32 bytes of the key, or a sentence saying which forms are accepted (it never repeats the value: it is a secret). */
export function parseStoreKey(text: string): Uint8Array | string {
  const key = text.trim();
  if (HEX.test(key)) return new Uint8Array(Buffer.from(key, 'hex'));
  if (BASE64.test(key)) return new Uint8Array(Buffer.from(key, 'base64'));
  if (BASE64URL.test(key)) return new Uint8Array(Buffer.from(key, 'base64url'));
  return `MATRIX_CRYPTO_KEY must be ${STORE_KEY_FORMS}; the value given is neither`;
}
