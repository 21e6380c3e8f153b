import { type FetchFunction, type Logger as SlackLogger, LogLevel, WebClient } from '@slack/web-api';
import type { Logger } from 'pino';
import type { ChannelSender, Delivery, DeliveryReceipt, PluginContext } from 'notification-hub/plugin-api';
import { RetryableError, renderOnce } from 'notification-hub/plugin-api';
import { classifySlackError } from './classify-error.ts';
import { messageToMrkdwn } from './mrkdwn.ts';
import type { SlackSettings } from './settings.ts';
import { normalizeSlackTarget } from './targets.ts';

export function createSlackSender(context: PluginContext<SlackSettings>): ChannelSender {
  const { settings } = context;
  const logger = sdkLogger(context.logger.child({ sdk: '@slack/web-api' }));
  // Once per message, not per channel it goes to (a body that cannot be formatted is refused once too).
  const mrkdwnFor = renderOnce(messageToMrkdwn);

  /**
   * A client per delivery, so that its requests carry that delivery's abort
   * signal (the SDK takes no signal per call). Building one is cheap: the
   * connections are pooled by fetch, not by the client.
   */
  const clientFor = (signal: AbortSignal): WebClient =>
    new WebClient(settings.token, {
      slackApiUrl: settings.apiUrl,
      logger,
      // The hub's runtime retries and waits out rate limits without holding a
      // worker; the SDK must neither retry nor sleep on a 429 by itself.
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      fetch: withSignal(signal),
    });

  return {
    async deliver(delivery: Delivery, signal: AbortSignal): Promise<DeliveryReceipt> {
      const target = normalizeSlackTarget(delivery.target);
      const text = mrkdwnFor(delivery.message);
      try {
        const result = await clientFor(signal).chat.postMessage({
          channel: target,
          text,
          mrkdwn: true,
          unfurl_links: false,
        });
        if (!result.ts) throw new RetryableError(`Slack accepted the message to ${target} but returned no ts`);
        return { peerId: result.ts, details: { channel: result.channel ?? target } };
      } catch (err) {
        if (signal.aborted) throw new RetryableError(`delivery to ${target} was interrupted`, { code: 'aborted' });
        throw classifySlackError(err, target);
      }
    },
  };
}

function withSignal(signal: AbortSignal): FetchFunction {
  return (url, init) =>
    fetch(url, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal });
}

/** The SDK's logger interface on top of the plugin's pino logger. */
function sdkLogger(log: Logger): SlackLogger {
  const text = (msg: unknown[]): string => msg.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg) => log.debug(text(msg)),
    info: (...msg) => log.info(text(msg)),
    warn: (...msg) => log.warn(text(msg)),
    error: (...msg) => log.error(text(msg)),
    setLevel: () => {},
    getLevel: () => LogLevel.DEBUG,
    setName: () => {},
  };
}
