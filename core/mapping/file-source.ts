import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile, writeFile, rename } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { MappingSource, MappingUpdate } from './source.ts';

/**
 * The embedded default: the mapping document in a local JSON file, watched.
 * The folder is watched rather than the file, because editors and config
 * managers replace a file instead of writing into it.
 */
export class FileMappingSource implements MappingSource {
  readonly description: string;
  connected = false;
  #path: string;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastRevision: string | undefined;

  constructor(options: { path: string }) {
    this.#path = resolve(options.path);
    this.description = `file ${this.#path}`;
  }

  async start(onUpdate: (update: MappingUpdate) => void, onError: (error: Error) => void): Promise<void> {
    const check = async () => {
      try {
        const update = await this.#read();
        this.connected = true;
        if (update.revision !== this.#lastRevision) {
          this.#lastRevision = update.revision;
          onUpdate(update);
        }
      } catch (err) {
        this.connected = false;
        // Reported again once readable, even unchanged, so that the store knows the source is back.
        this.#lastRevision = undefined;
        onError(err as Error);
      }
    };
    await check();
    this.#watcher = watch(dirname(this.#path), (_event, name) => {
      if (name !== null && name !== basename(this.#path)) return;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(check, 50);
    });
    this.#watcher.on('error', (err) => onError(err));
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#watcher?.close();
  }

  async get(): Promise<MappingUpdate | null> {
    try {
      return await this.#read();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async put(document: Record<string, unknown>): Promise<string> {
    const text = `${JSON.stringify(document, null, 2)}\n`;
    const temporary = `${this.#path}.${process.pid}.tmp`;
    await writeFile(temporary, text);
    await rename(temporary, this.#path);
    return revisionOf(text);
  }

  async #read(): Promise<MappingUpdate> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw Object.assign(new Error(`mapping file ${this.#path}: cannot read it (${code}); create it or set COUCHDB_URL`), { code });
    }
    try {
      return { revision: revisionOf(text), document: JSON.parse(text) };
    } catch (err) {
      throw new Error(`mapping file ${this.#path}: not valid JSON: ${(err as Error).message}`);
    }
  }
}

function revisionOf(text: string): string {
  return `file-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}
