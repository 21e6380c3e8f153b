/** Every Redis key and stream of one hub, under its prefix (CONTRACT §3). */
export interface Keys {
  /** The hub's prefix as configured (`notify`): delivery ids, and so peers' transaction ids, are made of it. */
  prefix: string;
  /** What every key starts with: the prefix, hash-tagged in a Redis Cluster (`{notify}`). */
  base: string;
  in: string;
  deliver(channel: string): string;
  dead: string;
  events: string;
  /** The record of one message for `hub status`: its targets and their attempts. */
  message(entryId: string): string;
  /** Producer idempotency key → the entry id that carried it first. */
  producerId(id: string): string;
  /** The last good mapping. */
  mapping: string;
  /** Recent revisions in force (revision → `{at, document}`), for the console's diff. */
  mappingRevisions: string;
  /** The same revisions by when each came into force (a sorted set revision → ms): listed and trimmed without reading a document. */
  mappingRevisionsAt: string;
  /** Live workers of a channel: a sorted set of consumer → last heartbeat (ms). */
  workers(channel: string): string;
  /** Why a channel could not start in some process (a string with a short TTL, refreshed while that process runs). */
  channelDown(channel: string): string;
  /** Live hub processes. */
  hubs: string;
  /** Held by the one active hub. */
  hubLease: string;
  /** The unsettled deliveries of one target, oldest first: whoever holds the head may deliver (per-target order across workers). */
  order(channel: string, target: string): string;
  /** Workers waiting for another's older delivery to one target: a set of their wake channels; the one holding the new head is told when a head is settled. */
  orderWaiters(channel: string, target: string): string;
  /**
   * The pub/sub channel a worker is woken on when an order list it waits on moves (the message: that list's key),
   * and handed deliveries on (their entry ids). It ends with `:<consumer>`: SETTLE tells the waiter holding a new head by that.
   */
  wake(channel: string, consumer: string): string;
  /** Armed escalations: a sorted set of entry id → next due time (ms). */
  escalations: string;
  /** One message's escalation: routes, rounds, state, acknowledgements (a hash). */
  escalation(entryId: string): string;
  /** The open throttle window of one group and key: a string, the id of the digest it collects into. */
  throttleWindow(group: string, key: string): string;
  /** Digests not yet sent: a sorted set of digest id → when its window closes (ms). */
  digests: string;
  /** The counter digest ids are drawn from. */
  digestSeq: string;
  /** One digest: its window, what it holds, its state (a hash); `:routes` (a set) and `:held` (a list of entry ids) beside it. */
  digest(id: string): string;
  plugin(name: string, ...parts: string[]): string;
}

/**
 * In a Redis Cluster (`hashTag`) the prefix is hash-tagged, `{notify}:in`, so
 * that every key of one hub lives in one slot: each Lua script touches several
 * of them at once, which a cluster allows only within one slot. Hubs with
 * different prefixes land in different slots, spread over the shards. On one
 * server or under Sentinel the keys stay `notify:in`, as producers know them.
 */
export function createKeys(prefix: string, options: { hashTag?: boolean } = {}): Keys {
  const base = options.hashTag ? `{${prefix}}` : prefix;
  return {
    prefix,
    base,
    in: `${base}:in`,
    deliver: (channel) => `${base}:deliver:${channel}`,
    dead: `${base}:dead`,
    events: `${base}:events`,
    message: (entryId) => `${base}:msg:${entryId}`,
    producerId: (id) => `${base}:id:${id}`,
    mapping: `${base}:mapping`,
    mappingRevisions: `${base}:mapping:revisions`,
    mappingRevisionsAt: `${base}:mapping:revisions:at`,
    workers: (channel) => `${base}:workers:${channel}`,
    channelDown: (channel) => `${base}:down:${channel}`,
    hubs: `${base}:hubs`,
    hubLease: `${base}:hub:lease`,
    order: (channel, target) => `${base}:order:${channel}:${target}`,
    orderWaiters: (channel, target) => `${base}:order-waiters:${channel}:${target}`,
    wake: (channel, consumer) => `${base}:wake:${channel}:${consumer}`,
    escalations: `${base}:escalations`,
    escalation: (entryId) => `${base}:escalation:${entryId}`,
    throttleWindow: (group, key) => `${base}:throttle:${group}:${key}`,
    digests: `${base}:digests`,
    digestSeq: `${base}:digest-seq`,
    digest: (id) => `${base}:digest:${id}`,
    plugin: (name, ...parts) => [base, 'plugin', name, ...parts].join(':'),
  };
}
