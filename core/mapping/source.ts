/** One revision of the mapping document as a source sees it. */
export interface MappingUpdate {
  /** CouchDB `_rev`, or a content hash for the file source. */
  revision: string;
  /** The whole document (`{ _id, mapping: {...} }`), or `null` when it was deleted. */
  document: unknown;
}

/**
 * Where the mapping document lives: CouchDB (followed through `_changes`) or a
 * local file (watched). A source only fetches and follows; validation and
 * keeping the last good mapping belong to the mapping store.
 */
export interface MappingSource {
  /** Where it reads from, for logs and `hub status`, with any password removed. */
  readonly description: string;
  /** True while the source is connected and following (CouchDB reachable, file readable). */
  readonly connected: boolean;
  /**
   * Fetch the current document, then follow changes, calling `onUpdate` for
   * each new revision (and once for the current one). Resolves once the
   * follower runs, even if the source is unreachable: it keeps retrying with
   * backoff and never throws after start. `onError` reports each failure.
   */
  start(onUpdate: (update: MappingUpdate) => void, onError: (error: Error) => void): Promise<void>;
  stop(): Promise<void>;
  /** The current document, fetched now (for `hub mapping get`); `null` when it does not exist. */
  get(): Promise<MappingUpdate | null>;
  /** Replace the document (for `hub mapping put`), keeping `_id`; resolves with the new revision. */
  put(document: Record<string, unknown>): Promise<string>;
}
