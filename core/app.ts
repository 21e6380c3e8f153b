import { setTimeout as sleep } from 'node:timers/promises';
import type { AwilixContainer } from 'awilix/browser';
import { HubError } from './errors.ts';
import { type HttpServer, startHttpServer } from './http/server.ts';
import { registerStreamGauges } from './http/stream-gauges.ts';
import { type BuildOptions, type Cradle, buildContainer } from './container.ts';
import { createConsole } from './console/index.ts';
import { acknowledgements } from './escalation/acknowledge.ts';
import { Digester } from './digest/digester.ts';
import { Escalator } from './escalation/escalator.ts';
import { formatLibraries } from './format-libraries.ts';
import type { ChannelSender, ChannelWatcher } from './plugin-api.ts';
import { whenReady } from './redis/connect.ts';
import { ChannelFault } from './runtime/channel-fault.ts';
import { createPluginContext } from './runtime/plugin-context.ts';
import { ChannelWorker } from './runtime/worker.ts';

export interface StartOptions {
  /** Run the hub (routing). Default true. */
  hub?: boolean;
  /** Channels to run workers for: `'configured'` (default) or a list. */
  channels?: 'configured' | string[];
  /** Deliveries in flight per channel (default: `delivery.concurrency`). */
  concurrency?: number;
  /** Serve /healthz, /readyz, /metrics (default true; a port of 0 picks a free one). */
  http?: boolean;
  /** How often the hub looks for due escalations (default 250 ms). */
  escalationPollMs?: number;
  /** How often the hub looks for throttle windows to close (default 250 ms). */
  digestPollMs?: number;
}

/** What a stop did with the deliveries that were being made. */
export interface StopReport {
  /** Calls to a peer in flight when the stop began that ended and were settled. */
  finished: number;
  /** Calls still running at the end of the grace period: cut, and left pending for another worker. */
  cutOff: number;
}

/** One hub process: the hub, some channels' workers and the HTTP port, built from one container. */
export class App {
  readonly container: AwilixContainer<Cradle>;
  readonly workers: ChannelWorker[] = [];
  /** The plugins' watchers (acknowledgements), one per channel with workers here. */
  readonly watchers: ChannelWatcher[] = [];
  /** Channels this process was to run and could not start, with the reason (a sentence). */
  readonly down = new Map<string, string>();
  escalator: Escalator | undefined;
  digester: Digester | undefined;
  http: HttpServer | undefined;
  #runsHub = false;
  #hubStarted = false;
  #ingressStarted = false;
  #faults: ChannelFault[] = [];
  /** The plugins' signal: the process stops. */
  #controller = new AbortController();
  /** Ends a start still waiting (for Redis) when a stop comes first. */
  #startAborted = new AbortController();

  private constructor(container: AwilixContainer<Cradle>) {
    this.container = container;
  }

  static async create(options: BuildOptions = {}): Promise<App> {
    return new App(await buildContainer(options));
  }

  get cradle(): Cradle {
    return this.container.cradle;
  }

  /**
   * The operations port first (so that /healthz and /readyz answer while Redis
   * is away), then, once Redis answers, the hub and the workers. A channel that
   * cannot start is reported down and the others run. Rejects on a fault of
   * the hub's own configuration (a Redis database that does not exist, a port
   * that cannot be opened), or with an AbortError when stopped while waiting.
   */
  async start(options: StartOptions = {}): Promise<void> {
    const { plugins, logger, config, redis, redisHealth } = this.cradle;
    const channels = options.channels === undefined || options.channels === 'configured' ? plugins.wanted : options.channels;
    for (const name of channels) {
      const entry = plugins.entries.get(name);
      if (!entry) throw new HubError('HUB_ERR_USAGE', `no channel plugin is named "${name}"; installed: ${[...plugins.names].join(', ')}`);
      if (entry.settings.state === 'unconfigured') throw new HubError('HUB_ERR_CONFIG', `channel ${name} is ${entry.settings.reason}`);
    }
    for (const entry of plugins.entries.values()) {
      if (entry.settings.state === 'unconfigured' && options.channels === undefined) logger.info({ channel: entry.plugin.name, reason: entry.settings.reason }, 'channel not started');
    }
    this.#runsHub = options.hub ?? true;
    // Resolved now, so that it hears the connection's first event.
    void redisHealth;
    if (options.http ?? true) {
      registerStreamGauges(this.cradle, this.#runsHub);
      // Where the hub runs (its mapping store is the console's mapping in force), not in `hub worker` processes.
      const consoleRoutes = config.console.token && this.#runsHub ? createConsole(this.cradle, config.console.token) : undefined;
      this.http = await startHttpServer({ ...this.cradle, runsHub: this.#runsHub, down: this.down, ...(consoleRoutes ? { console: consoleRoutes } : {}) });
      logger.info({ port: this.http.port, host: config.http.host }, `serving /healthz, /readyz and /metrics${consoleRoutes ? ', and the console at /console' : ''}`);
    }
    // Before Redis answers, so that producers hear 503 (retry) rather than a refused connection.
    const ingress = this.cradle.httpIngress;
    if (this.#runsHub && ingress.enabled) {
      // Set first: a stop while it starts closes what it opened.
      this.#ingressStarted = true;
      await ingress.start();
    }
    await whenReady(redis, this.#startAborted.signal);
    redisHealth.watchSettings(config.redis.checkInterval);
    if (this.#runsHub) {
      this.#hubStarted = true;
      await this.cradle.mappingStore.start();
      // Stopped while the mapping loaded: nothing more may start after stop() has run.
      this.#startAborted.signal.throwIfAborted();
      this.cradle.mappingStore.on('refused', () => this.cradle.metrics.mappingRefused.inc());
      this.cradle.hub.start();
      const watching = new Set([...plugins.entries.values()].filter((e) => typeof e.plugin.watch === 'function').map((e) => e.plugin.name));
      this.escalator = new Escalator(this.cradle, { watching, ...(options.escalationPollMs ? { pollMs: options.escalationPollMs } : {}) });
      this.escalator.start();
      this.digester = new Digester(this.cradle, options.digestPollMs ? { pollMs: options.digestPollMs } : {});
      this.digester.start();
    }
    for (const name of channels) await this.#startWorker(name, options.concurrency ?? config.delivery.concurrency);
  }

  async #startWorker(name: string, concurrency: number): Promise<void> {
    const { plugins, logger, metrics } = this.cradle;
    const entry = plugins.entries.get(name)!;
    const acks = acknowledgements(this.cradle, name);
    const settings = entry.settings.state === 'ready' ? entry.settings.settings : {};
    const context = createPluginContext(this.cradle, name, settings, this.#controller.signal, { awaitsAcknowledgement: acks.awaits, acknowledge: acks.acknowledge });
    let sender: ChannelSender;
    try {
      if (entry.settings.state !== 'ready') throw new Error(entry.settings.reason);
      sender = await entry.plugin.createSender(context);
    } catch (err) {
      return this.#channelDown(name, err);
    }
    // Every channel renders bodies: the HTML libraries load now, not at its first message.
    formatLibraries();
    const worker = new ChannelWorker(this.cradle, name, sender, concurrency);
    worker.start();
    this.workers.push(worker);
    metrics.channelUp.set({ channel: name }, 1);
    if (entry.plugin.watch) {
      const watcherContext = { ...context, logger: context.logger.child({ component: 'watcher' }) };
      try {
        this.watchers.push(await entry.plugin.watch(watcherContext));
      } catch (err) {
        // Deliveries go on; only acknowledgements (read receipts) go unseen, so escalations nag regardless.
        logger.error({ channel: name, reason: this.#reasonOf(err) }, `the ${name} watcher could not start: ${this.#reasonOf(err)}; deliveries go on, acknowledgements are not seen`);
      }
    }
  }

  /** The channel is not started: say why (log, /readyz, /metrics, and Redis for `hub status` and `hub plugins`); its deliveries wait in its stream. */
  #channelDown(name: string, err: unknown): void {
    const { logger, metrics, redis, keys } = this.cradle;
    const reason = this.#reasonOf(err);
    this.down.set(name, reason);
    metrics.channelUp.set({ channel: name }, 0);
    logger.error({ channel: name, reason }, `channel ${name} is down: ${reason}; its deliveries wait in ${keys.deliver(name)} until it is fixed and restarted, and the other channels run`);
    const fault = new ChannelFault(redis, keys, name, reason);
    fault.start();
    this.#faults.push(fault);
  }

  #reasonOf(err: unknown): string {
    const text = err instanceof Error ? err.message : String(err);
    return this.cradle.redactor.redact(text.replace(/\s*\n\s*/g, '; ').trim() || 'its plugin failed without saying why');
  }

  /**
   * Stop reading, let deliveries in flight finish (then cut what still runs),
   * release everything. The hub and the workers stop together, so that what
   * was in flight when the stop began is what the report counts.
   */
  async stop(): Promise<StopReport> {
    this.#startAborted.abort();
    this.#controller.abort();
    const stopped = Promise.all([
      Promise.all(this.workers.map((w) => w.stop())),
      ...this.watchers.map((w) => w.stop()),
      ...this.#faults.map((f) => f.stop()),
      this.http?.close(),
      this.#ingressStarted ? this.cradle.httpIngress.stop() : undefined,
      this.#stopHub(),
    ]).then(([reports]) => reports);
    // With Redis away nothing can be settled or released: the stop gets the workers' grace, not more,
    // and what was not settled stays pending for another process.
    const reports = this.cradle.redisHealth.up
      ? await stopped
      : await Promise.race([stopped, sleep(this.cradle.config.delivery.stopGrace + 1000, undefined, { ref: false }).then(() => this.workers.map((w) => w.stopReport))]);
    this.cradle.redisHealth.close();
    await this.container.dispose();
    return reports.reduce((sum, r) => ({ finished: sum.finished + r.finished, cutOff: sum.cutOff + r.cutOff }), { finished: 0, cutOff: 0 });
  }

  async #stopHub(): Promise<void> {
    if (!this.#hubStarted) return;
    await this.escalator?.stop();
    await this.digester?.stop();
    await this.cradle.hub.stop();
    await this.cradle.mappingStore.stop();
  }
}
