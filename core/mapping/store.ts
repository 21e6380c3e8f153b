import { EventEmitter, once } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Keys } from '../redis/keys.ts';
import { keepRevision } from './revisions.ts';
import { uniqueRoutes } from './route-map.ts';
import type { MappingSource, MappingUpdate } from './source.ts';
import { type Mapping, type Route, type TargetRules, validateMapping } from './validate.ts';

export interface Resolution {
  /** The mapping's own list when one group is asked: read it, never change it. */
  routes: readonly Route[];
  /** Groups of `to` that the mapping does not know. */
  unknown: string[];
}

/**
 * The mapping in force. A new revision replaces it atomically (one reference
 * swap) only when it validates whole; the last good revision is kept in Redis,
 * so that a hub restarted while CouchDB is away still routes.
 */
export class MappingStore extends EventEmitter<{ change: [Mapping]; refused: [string[]] }> {
  current: Mapping | undefined;
  /** A revision of the source that is not in force (refused, deleted). */
  #revisionError: string | undefined;
  /** The source's last failure (CouchDB away, the file unreadable): it counts while the source is not connected. */
  #sourceError: string | undefined;
  #redis: Redis;
  #keys: Keys;
  #logger: Logger;
  #rules: ReadonlyMap<string, TargetRules>;
  #source: MappingSource;

  constructor(deps: { redis: Redis; keys: Keys; logger: Logger; targetRules: ReadonlyMap<string, TargetRules>; mappingSource: MappingSource }) {
    super();
    this.#redis = deps.redis;
    this.#keys = deps.keys;
    this.#logger = deps.logger.child({ component: 'mapping' });
    this.#rules = deps.targetRules;
    this.#source = deps.mappingSource;
  }

  /**
   * What needs attention about the mapping, for /readyz and `hub status`: a
   * revision not in force, or the source away. It clears once the source is
   * back to the mapping in force.
   */
  get lastError(): string | undefined {
    return this.#revisionError ?? (this.#source.connected ? undefined : this.#sourceError);
  }

  get source(): MappingSource {
    return this.#source;
  }

  async start(): Promise<void> {
    const saved = await this.#redis.hmget(this.#keys.mapping, 'revision', 'document');
    if (saved[0] && saved[1]) this.apply({ revision: saved[0], document: JSON.parse(saved[1]) }, 'redis');
    await this.#source.start(
      (update) => this.apply(update, 'source'),
      (error) => {
        this.#sourceError = error.message;
        this.#logger.warn({ err: error.message, source: this.#source.description }, 'mapping source unavailable; routing with the last good mapping');
      },
    );
  }

  async stop(): Promise<void> {
    await this.#source.stop();
  }

  /** Resolves once a mapping is in force: with none ever seen, the hub consumes nothing. */
  async ready(signal?: AbortSignal): Promise<Mapping> {
    if (this.current) return this.current;
    const [mapping] = await once(this, 'change', { signal });
    return mapping as Mapping;
  }

  apply(update: MappingUpdate, from: 'redis' | 'source'): boolean {
    if (from === 'source') this.#sourceError = undefined;
    if (update.document === null) {
      this.#revisionError = this.current
        ? 'the mapping document was deleted; routing with the last good revision until a new one is written'
        : `no mapping document at ${this.#source.description} yet; write one with hub mapping put <file>`;
      (this.current ? this.#logger.error.bind(this.#logger) : this.#logger.warn.bind(this.#logger))({ revision: update.revision }, this.#revisionError);
      return false;
    }
    if (update.revision === this.current?.revision) {
      // The source is back to the mapping in force (after an outage, a refused or a deleted revision): nothing needs attention.
      if (from === 'source' && this.#revisionError) this.#logger.info({ revision: update.revision }, 'the mapping source is back to the mapping in force');
      if (from === 'source') this.#revisionError = undefined;
      return true;
    }
    const result = validateMapping(update.document, update.revision, this.#rules);
    if (!result.ok) {
      this.#revisionError = `revision ${update.revision} refused: ${result.errors.join('; ')}`;
      this.#logger.error({ revision: update.revision, errors: result.errors }, 'mapping revision refused; the last good mapping stays in force');
      this.emit('refused', result.errors);
      return false;
    }
    this.current = result.mapping;
    this.#revisionError = undefined;
    this.#logger.info({ revision: update.revision, groups: result.mapping.groups.size, from }, 'mapping in force');
    if (from === 'source') {
      const json = JSON.stringify(update.document);
      this.#redis
        .hset(this.#keys.mapping, { revision: update.revision, document: json, at: Date.now() })
        .then(() => keepRevision(this.#redis, this.#keys, update.revision, json))
        .catch((err: Error) => this.#logger.warn({ err: err.message }, 'could not keep the mapping in Redis'));
    }
    this.emit('change', result.mapping);
    return true;
  }

  /** The targets of `groups`, each once, limited to `channels` when given. */
  resolve(groups: string[], channels?: ReadonlySet<string>): Resolution {
    const mapping = this.current;
    const lists: Route[][] = [];
    const unknown: string[] = [];
    for (const name of groups) {
      const group = mapping?.groups.get(name);
      if (!group) unknown.push(name);
      else lists.push(channels ? group.routes.filter((route) => channels.has(route.channel)) : group.routes);
    }
    // A group's routes are already each once: a message to one group (most) takes them as they are.
    return { routes: lists.length === 1 ? lists[0]! : uniqueRoutes(lists), unknown };
  }
}
