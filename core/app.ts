import type { AwilixContainer } from 'awilix';
import { HubError } from './errors.ts';
import { type HttpServer, startHttpServer } from './http/server.ts';
import { registerStreamGauges } from './http/stream-gauges.ts';
import { type BuildOptions, type Cradle, buildContainer } from './container.ts';
import { acknowledgements } from './escalation/acknowledge.ts';
import { Escalator } from './escalation/escalator.ts';
import type { ChannelWatcher } from './plugin-api.ts';
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
}

/** One hub process: the hub, some channels' workers and the HTTP port, built from one container. */
export class App {
  readonly container: AwilixContainer<Cradle>;
  readonly workers: ChannelWorker[] = [];
  /** The plugins' watchers (acknowledgements), one per channel with workers here. */
  readonly watchers: ChannelWatcher[] = [];
  escalator: Escalator | undefined;
  http: HttpServer | undefined;
  #runsHub = false;
  #controller = new AbortController();

  private constructor(container: AwilixContainer<Cradle>) {
    this.container = container;
  }

  static async create(options: BuildOptions = {}): Promise<App> {
    return new App(await buildContainer(options));
  }

  get cradle(): Cradle {
    return this.container.cradle;
  }

  async start(options: StartOptions = {}): Promise<void> {
    const { plugins, logger, config } = this.cradle;
    const channels = options.channels === undefined || options.channels === 'configured' ? plugins.configured : options.channels;
    for (const name of channels) {
      const entry = plugins.entries.get(name);
      if (!entry) throw new HubError('HUB_ERR_USAGE', `no channel plugin is named "${name}"; installed: ${[...plugins.names].join(', ')}`);
      if (entry.settings.state !== 'ready') throw new HubError('HUB_ERR_CONFIG', `channel ${name} is ${entry.settings.reason}`);
    }
    for (const entry of plugins.entries.values()) {
      if (entry.settings.state !== 'ready' && options.channels === undefined) logger.info({ channel: entry.plugin.name, reason: entry.settings.reason }, 'channel not started');
    }
    if (options.hub ?? true) {
      this.#runsHub = true;
      await this.cradle.mappingStore.start();
      this.cradle.mappingStore.on('refused', () => this.cradle.metrics.mappingRefused.inc());
      this.cradle.hub.start();
      const watching = new Set([...plugins.entries.values()].filter((e) => typeof e.plugin.watch === 'function').map((e) => e.plugin.name));
      this.escalator = new Escalator(this.cradle, { watching, ...(options.escalationPollMs ? { pollMs: options.escalationPollMs } : {}) });
      this.escalator.start();
    }
    for (const name of channels) await this.#startWorker(name, options.concurrency ?? config.delivery.concurrency);
    if (options.http ?? true) {
      registerStreamGauges(this.cradle, this.#runsHub);
      this.http = await startHttpServer({ ...this.cradle, runsHub: this.#runsHub });
    }
  }

  async #startWorker(name: string, concurrency: number): Promise<void> {
    const { plugins, redis, keys, logger } = this.cradle;
    const entry = plugins.entries.get(name)!;
    if (entry.settings.state !== 'ready') return;
    const acks = acknowledgements(this.cradle, name);
    const context = {
      settings: entry.settings.settings,
      logger: logger.child({ plugin: name }),
      redis,
      key: (...parts: string[]) => keys.plugin(name, ...parts),
      signal: this.#controller.signal,
      awaitsAcknowledgement: acks.awaits,
      acknowledge: acks.acknowledge,
    };
    const sender = await entry.plugin.createSender(context);
    const worker = new ChannelWorker(this.cradle, name, sender, concurrency);
    worker.start();
    this.workers.push(worker);
    if (entry.plugin.watch) {
      const watcherContext = { ...context, logger: logger.child({ plugin: name, component: 'watcher' }), signal: this.#controller.signal };
      this.watchers.push(await entry.plugin.watch(watcherContext));
    }
  }

  async stop(): Promise<void> {
    await this.http?.close();
    if (this.#runsHub) {
      await this.escalator?.stop();
      await this.cradle.hub.stop();
      await this.cradle.mappingStore.stop();
    }
    this.#controller.abort();
    await Promise.all([...this.workers.map((w) => w.stop()), ...this.watchers.map((w) => w.stop())]);
    await this.container.dispose();
  }
}
