import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** The hub's Prometheus metrics, on a registry of its own (a test may run several hubs in one process). */
export class Metrics {
  readonly registry = new Registry();
  readonly messagesIn = new Counter({
    name: 'hub_messages_in_total',
    help: 'Entries read from the ingress stream, by outcome (routed, dead, duplicate).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly deliveries = new Counter({
    name: 'hub_deliveries_total',
    help: 'Deliveries settled, by channel and outcome (sent, dead).',
    labelNames: ['channel', 'outcome'],
    registers: [this.registry],
  });
  readonly attempts = new Counter({
    name: 'hub_delivery_attempts_total',
    help: 'Calls to a channel peer, by channel, result (ok, retryable, rate_limited, permanent) and, for a failure, the plugin\'s error code (e.g. encrypted_room, crypto_starting, key_share_failed, smtp_550).',
    labelNames: ['channel', 'result', 'code'],
    registers: [this.registry],
  });
  readonly encrypted = new Counter({
    name: 'hub_deliveries_encrypted_total',
    help: 'Deliveries the peer accepted end-to-end encrypted, by channel.',
    labelNames: ['channel'],
    registers: [this.registry],
  });
  readonly deadLetters = new Counter({
    name: 'hub_dead_letters_total',
    help: 'Dead letters written, by stage (ingress, delivery).',
    labelNames: ['stage'],
    registers: [this.registry],
  });
  readonly mappingRevision = new Gauge({
    name: 'hub_mapping_info',
    help: 'The mapping revision in force (value 1), with its number of groups.',
    labelNames: ['revision', 'groups'],
    registers: [this.registry],
  });
  readonly escalations = new Counter({
    name: 'hub_escalations_total',
    help: 'Escalations by outcome: due (a due time claimed by this process), sent (a round of reminders queued for delivery), cancelled (read, reacted to or replied to while armed).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly held = new Counter({
    name: 'hub_messages_held_total',
    help: 'Messages held in a throttle window, to be folded into its digest (a message held by two groups counts twice).',
    registers: [this.registry],
  });
  readonly digests = new Counter({
    name: 'hub_digests_total',
    help: 'Throttle windows closed by this process, by outcome: sent (a digest queued for delivery to the group\'s targets), empty (nothing was held: nothing sent).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly ingressRequests = new Counter({
    name: 'hub_http_ingress_requests_total',
    help: 'Requests to the HTTP ingress, by endpoint (messages, groups, alertmanager, unknown) and answer status (202, 4xx, 503, …).',
    labelNames: ['endpoint', 'status'],
    registers: [this.registry],
  });
  readonly mappingRefused = new Counter({
    name: 'hub_mapping_refused_total',
    help: 'Mapping revisions refused because they did not validate.',
    registers: [this.registry],
  });

  readonly redisSettingOk = new Gauge({
    name: 'hub_redis_settings_ok',
    help: 'Whether a setting of Redis is as the guarantees assume (1) or not (0): maxmemory-policy (noeviction), permissions (the Redis user may run every command the hub needs). The log and /readyz say what is wrong.',
    labelNames: ['setting'],
    registers: [this.registry],
  });

  readonly channelUp = new Gauge({
    name: 'hub_channel_up',
    help: 'Per channel this process is to run: 1 when its workers run, 0 when the channel could not start (the log and /readyz say why; its deliveries wait in its stream).',
    labelNames: ['channel'],
    registers: [this.registry],
  });

  constructor(options: { defaults?: boolean } = {}) {
    // The standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes, …) that dashboards expect.
    if (options.defaults ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** A gauge whose value is read from Redis at scrape time. */
  gauge(name: string, help: string, labelNames: string[], collect: (gauge: Gauge) => Promise<void>): Gauge {
    return new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        this.reset();
        await collect(this);
      },
    });
  }
}
