/**
 * The plugin API: the one module a channel plugin imports from `core/`.
 *
 * A plugin is a folder (under `plugins/`, in a `HUB_PLUGIN_DIRS` folder) or
 * an npm package (named in `plugins.modules`) whose entry default-exports
 * `definePlugin({...})`, importing this module as
 * `notification-hub/plugin-api`. The runtime reads the plugin's stream,
 * calls `deliver` once per delivery, and does all retrying, backoff,
 * rate-limit waits, dead-lettering and outcome events, the same for every
 * plugin.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Counter, Gauge } from 'prom-client';
import { z } from 'zod';

export { z };
export { PermanentError, RetryableError, UNFORMATTABLE, isPermanent, isRetryable } from './errors.ts';
export {
  type BodyFormat,
  EMAIL_HTML,
  MATRIX_HTML,
  escapeHtml,
  oneLine,
  renderBody,
  sanitizeHtml,
  stripBidiControls,
  subjectLine,
  toHtml,
  toPlainText,
} from './format.ts';
/** Render once per message (per sender), a refusal included: see core/render-cache.ts. */
export { type RenderInput, renderOnce } from './render-cache.ts';
/** The signal of one call to a peer: cut by the delivery's signal or a timeout, nothing left behind once released. */
export { type CallSignal, callSignal } from './abort.ts';
/** The one `Retry-After` parser: seconds or an HTTP date, a past date is 0 (the runtime's floor applies). */
export { retryAfterMs } from './runtime/retry-policy.ts';

/** The plugin API version this core implements; a plugin declares the one it was written for. */
export const PLUGIN_API_VERSION = 1;

/** The message as the producer sent it, normalized by the hub. */
export interface OutboundMessage {
  /** The groups it was addressed to (`#admins`). */
  to: string[];
  subject?: string;
  body: string;
  format: import('./format.ts').BodyFormat;
  /** The producer's idempotency key, if it gave one. */
  producerId?: string;
}

/** One message to one target of one channel. */
export interface Delivery {
  /** Stable across retries, crashes and replays: derive transaction ids and Message-IDs from it. */
  id: string;
  /** The `notify:in` entry id the message came from (what `hub status` takes). */
  messageId: string;
  channel: string;
  /** The target as written in the mapping, already validated by {@link ChannelPlugin.validateTarget}. */
  target: string;
  message: OutboundMessage;
  /** 1 for the first try; rate-limited tries do not count. */
  attempt: number;
  /**
   * True when the message escalates unless someone acknowledges it (an escalation was armed when it
   * was routed, or this is one of its reminders): a plugin that watches for acknowledgements keeps
   * what it needs to map them back (ask {@link PluginContext.awaitsAcknowledgement} whether it still does).
   * False when it does not; absent when unknown (a delivery queued by an older hub): then ask.
   */
  awaitsAcknowledgement?: boolean;
}

/** What the peer said when it accepted a delivery (event id, Message-ID, ts): kept in the delivery record. */
export interface DeliveryReceipt {
  peerId?: string;
  /**
   * Anything else worth showing in `hub status`, e.g. `{ encrypted: 'yes' }`.
   * `link`, when given, is a URL where people can open what was delivered
   * (a matrix.to permalink): an escalation message shows it.
   */
  details?: Record<string, string>;
}

/** How someone showed they saw a message: a read receipt, a reaction, or a reply. */
export interface Acknowledgement {
  /** Who: the peer's own id of the person (`@will:half-shot.uk`). */
  by: string;
  how: 'read' | 'reaction' | 'reply';
}

/** What a plugin's sender is given: its own validated settings and the shared services, nothing else. */
export interface PluginContext<Settings> {
  settings: Settings;
  logger: Logger;
  /** The shared Redis connection; keep your keys under {@link PluginContext.key}. */
  redis: Redis;
  /** A Redis key private to this plugin under the hub's prefix: `key('alias', '#ops:hs')`. */
  key(...parts: string[]): string;
  /** Aborted when the worker shuts down. */
  signal: AbortSignal;
  /**
   * The hub's one redactor: it knows every secret setting of every channel
   * already (and Redis's and CouchDB's passwords). Redact what you put into
   * an error; `add` a secret the settings do not hold as such (a login token
   * derived from them), and it is blanked everywhere from then on, logs included.
   */
  redactor: SecretRedactor;
  /**
   * A lease under {@link PluginContext.key}`(name)`: one holder at a time
   * among all the processes of this channel (a sync loop, a lock around a
   * read-modify-write at the peer). Each call is a new holder.
   */
  lease(name: string, ttlMs: number): PluginLease;
  /** Counters and gauges of the plugin's own, on the hub's `/metrics` as `hub_plugin_<channel>_<name>`. */
  metrics: PluginMetrics;
  /**
   * Whether anything waits for someone to acknowledge this message (an armed
   * escalation). A plugin that can observe acknowledgements need only
   * remember what it delivered for such messages. Absent in a core without
   * escalation.
   */
  awaitsAcknowledgement?(messageId: string): Promise<boolean>;
  /**
   * Report that someone read, reacted to or replied to what was delivered for
   * `messageId` (the `Delivery.messageId`). Idempotent: report every sign
   * seen; the core records it and cancels the escalation it stops.
   */
  acknowledge?(messageId: string, ack: Acknowledgement): Promise<void>;
}

/** Blanks secrets out of text: see {@link PluginContext.redactor}. */
export interface SecretRedactor {
  /** `text` with every known secret (as written, URL-encoded and base64) replaced by `[redacted]`. */
  redact(text: string): string;
  /** Know `secret` from now on; one shorter than 4 characters is ignored (blanking it would garble text). */
  add(secret: string): void;
}

/** One holder at a time, across processes, with expiry in Redis: see {@link PluginContext.lease}. */
export interface PluginLease {
  /** Take it when free, or renew it when this holder has it: one round trip; true when held. */
  tryAcquire(): Promise<boolean>;
  /** Wait until this holder has it (true), or `signal` aborts (false); `onStandby` once, when the first try finds it held. */
  acquire(signal: AbortSignal, onStandby?: () => void): Promise<boolean>;
  /** Keep it renewed while `signal` is live; `onLost` when another holder took it or renewals failed for a whole ttl. */
  hold(signal: AbortSignal, onLost: () => void): void;
  /** Let go, if this holder still has it. Never throws. */
  release(): Promise<void>;
}

/** A plugin's own Prometheus metrics (prom-client's types): see {@link PluginContext.metrics}. */
export interface PluginMetrics {
  /**
   * The counter `hub_plugin_<channel>_<name>`; `name` is lower-case
   * `snake_case` and ends in `_total`. Asking again for the same name gives the same counter.
   */
  counter(name: string, help: string, labelNames?: string[]): Counter;
  /** The gauge `hub_plugin_<channel>_<name>`; as {@link PluginMetrics.counter}, without `_total`. */
  gauge(name: string, help: string, labelNames?: string[]): Gauge;
}

/** A background task of a plugin (see {@link ChannelPlugin.watch}). */
export interface ChannelWatcher {
  /** Stop, and release what it holds; resolves once it has. */
  stop(): Promise<void>;
}

export interface ChannelSender {
  /**
   * Deliver one message to one target. Resolve with a receipt when the peer
   * accepted it; throw `PermanentError` when it never will, `RetryableError`
   * (with `retryAfterMs`, `rateLimited`) when it may later. `signal` aborts on
   * shutdown and on the runtime's per-delivery timeout.
   */
  deliver(delivery: Delivery, signal: AbortSignal): Promise<DeliveryReceipt>;
  /** Release connections and timers. */
  close?(): Promise<void>;
}

export interface ChannelPlugin<Settings extends object = Record<string, unknown>> {
  /** The channel name: the key in the mapping and the stream suffix. Must equal the folder name. */
  name: string;
  /** The plugin API version it was written for ({@link PLUGIN_API_VERSION}). */
  apiVersion: number;
  /** One line for `hub plugins`. */
  description: string;
  /** The settings: validated from `hub.config.ts` `channels.<name>` overlaid with the environment. */
  settings: {
    schema: z.ZodType<Settings>;
    /** Setting key → environment variable (`homeserver: 'MATRIX_HOMESERVER'`). `<VAR>_FILE` is read too. */
    env?: Partial<Record<keyof Settings & string, string>>;
    /** Keys that hold secrets: only ever from the environment, and redacted everywhere. */
    secrets?: Array<keyof Settings & string>;
  };
  /** Why a target is malformed, or `undefined` when it is fine. Pure: runs when the mapping loads. */
  validateTarget(target: string): string | undefined;
  /** A canonical form, so the same target reached twice is delivered once (`Will@X.org` = `will@x.org`). */
  normalizeTarget?(target: string): string;
  /** Build the sender. Runs once per worker process. */
  createSender(context: PluginContext<Settings>): ChannelSender | Promise<ChannelSender>;
  /**
   * Optional: watch the peer for acknowledgements of delivered messages
   * (read receipts, reactions, replies) and report them with
   * {@link PluginContext.acknowledge}. Started once per worker process of
   * the channel, next to the sender; stopped at shutdown. A channel with a
   * watcher is one whose deliveries an `escalate` block waits on.
   */
  watch?(context: PluginContext<Settings>): ChannelWatcher | Promise<ChannelWatcher>;
}

/** Declare a plugin; the identity function that gives a plugin author types and checks. */
export function definePlugin<Settings extends object>(plugin: ChannelPlugin<Settings>): ChannelPlugin<Settings> {
  return plugin;
}

/**
 * `createSender` that loads the sender module on first use, so that a process
 * which only validates targets (the hub) never loads the channel's SDK:
 * `createSender: loadSender(import.meta.url, './sender', 'createEmailSender')`.
 */
export function loadSender<Settings extends object>(
  base: string,
  module: string,
  exportName: string,
): (context: PluginContext<Settings>) => Promise<ChannelSender> {
  return async (context) => {
    // Compiled plugins are `.js`; the extension follows the index's own.
    const url = new URL(`${module}${base.endsWith('.ts') ? '.ts' : '.js'}`, base).href;
    const loaded = (await import(url)) as Record<string, (context: PluginContext<Settings>) => ChannelSender | Promise<ChannelSender>>;
    const create = loaded[exportName];
    if (typeof create !== 'function') throw new Error(`${url} does not export ${exportName}`);
    return create(context);
  };
}
