/**
 * Keeps every configured secret (tokens, passwords, API keys, the password of
 * a URL) and blanks it out of any text that leaves the process: log lines,
 * errors, dead letters, `hub status`, metrics. Redaction by value rather than
 * by field name, because a secret can hide anywhere: in an SDK's error
 * message, in a URL, in a peer's echo of the request.
 */
export class Redactor {
  #secrets: string[] = [];

  add(secret: string | undefined): void {
    if (!secret || secret.length < 4 || this.#secrets.includes(secret)) return;
    this.#secrets.push(secret);
    for (const variant of [encodeURIComponent(secret), Buffer.from(secret).toString('base64')]) {
      if (variant !== secret && !this.#secrets.includes(variant)) this.#secrets.push(variant);
    }
    // Longest first, so that a secret containing another is blanked whole.
    this.#secrets.sort((a, b) => b.length - a.length);
  }

  /** Register the password (and user info) of a URL such as `smtp://user:pass@host`. */
  addUrl(url: string | undefined): void {
    if (!url) return;
    try {
      const parsed = new URL(url);
      if (parsed.password) this.add(decodeURIComponent(parsed.password));
    } catch {
      // Not a URL: the config validation reports it.
    }
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.#secrets) {
      if (out.includes(secret)) out = out.split(secret).join('[redacted]');
    }
    return out;
  }
}
