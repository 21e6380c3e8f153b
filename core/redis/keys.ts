/** Every Redis key and stream of one hub, under its prefix (CONTRACT §3). */
export interface Keys {
  prefix: string;
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
  /** Armed escalations: a sorted set of entry id → next due time (ms). */
  escalations: string;
  /** One message's escalation: routes, rounds, state, acknowledgements (a hash). */
  escalation(entryId: string): string;
  plugin(name: string, ...parts: string[]): string;
}

export function createKeys(prefix: string): Keys {
  return {
    prefix,
    in: `${prefix}:in`,
    deliver: (channel) => `${prefix}:deliver:${channel}`,
    dead: `${prefix}:dead`,
    events: `${prefix}:events`,
    message: (entryId) => `${prefix}:msg:${entryId}`,
    producerId: (id) => `${prefix}:id:${id}`,
    mapping: `${prefix}:mapping`,
    mappingRevisions: `${prefix}:mapping:revisions`,
    workers: (channel) => `${prefix}:workers:${channel}`,
    channelDown: (channel) => `${prefix}:down:${channel}`,
    hubs: `${prefix}:hubs`,
    hubLease: `${prefix}:hub:lease`,
    order: (channel, target) => `${prefix}:order:${channel}:${target}`,
    escalations: `${prefix}:escalations`,
    escalation: (entryId) => `${prefix}:escalation:${entryId}`,
    plugin: (name, ...parts) => [prefix, 'plugin', name, ...parts].join(':'),
  };
}
