/**
 * Keeps every configured secret (tokens, passwords, API keys, the password of
 * a URL) and blanks it out of any text that leaves the process: log lines,
 * errors, dead letters, `hub status`, metrics. Redaction by value rather than
 * by field name, because a secret can hide anywhere: in an SDK's error
 * message, in a URL, in a peer's echo of the request. The one redactor of the
 * hub: plugins reach it as `PluginContext.redactor`.
 */
export class Redactor {
  #secrets: string[] = [];

  /** Blank `secret` (and its URL-encoded and base64 forms) from now on; shorter than 4 characters it is not a secret but a word. */
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
      // As written and decoded: `%21` and `!` are the same password, and either may be echoed.
      if (parsed.password) for (const form of [parsed.password, decodeURIComponent(parsed.password)]) this.add(form);
    } catch {
      // Not a URL: the config validation reports it.
    }
  }

  /** `text` with every known secret replaced by `[redacted]`. */
  redact(text: string): string {
    let out = text;
    for (const secret of this.#secrets) {
      if (out.includes(secret)) out = out.split(secret).join('[redacted]');
    }
    return out;
  }
}
