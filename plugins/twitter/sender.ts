import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { type ITwitterApiClientPlugin, TwitterApi, type TwitterApiv2 } from 'twitter-api-v2';
import type { ChannelSender, Delivery, DeliveryReceipt, PluginContext } from 'notification-hub/plugin-api';
import { PermanentError, RetryableError, renderOnce } from 'notification-hub/plugin-api';
import { classifyTwitterError } from './classify-error.ts';
import { type TwitterSettings, X_API_URL } from './settings.ts';
import { parseTwitterTarget } from './targets.ts';
import { composeText, fitDirectMessage, fitPost } from './text.ts';

/** How long a resolved @handle → user id is trusted; handles can be renamed and reused. */
const USER_ID_TTL_SECONDS = 24 * 3600;

export function createTwitterSender(context: PluginContext<TwitterSettings>): ChannelSender {
  const { settings, redis } = context;
  const { appKey, appSecret, accessToken, accessSecret, apiUrl } = settings;
  // twitter-api-v2 sends with node:https unless given an agent; an http:// apiUrl needs an http agent.
  const agent = apiUrl.startsWith('http:') ? new HttpAgent({ keepAlive: true }) : new HttpsAgent({ keepAlive: true });
  // Once per message, not per target (a body that cannot be formatted is refused once too).
  const textFor = renderOnce(composeText);

  /**
   * A client per delivery, so that its requests carry that delivery's abort
   * signal; the connections are pooled by the shared agent. Both behaviours
   * come as twitter-api-v2 plugins, its documented request hooks.
   */
  const clientFor = (signal: AbortSignal): TwitterApiv2 =>
    new TwitterApi(
      { appKey, appSecret, accessToken, accessSecret },
      { httpAgent: agent, plugins: [apiBase(apiUrl), abortOn(signal)] },
    ).v2;

  async function userId(client: TwitterApiv2, username: string): Promise<string> {
    const cacheKey = context.key('user', username);
    const cached = await redis.get(cacheKey);
    if (cached) return cached;
    // X answers an unknown username with 200 and a resource-not-found problem in `errors`.
    const result = await client.userByUsername(username);
    if (!result.data) {
      const detail = result.errors?.[0]?.detail ?? 'no such user';
      throw new PermanentError(`X has no user @${username} (${detail})`, { code: 'user_not_found' });
    }
    await redis.set(cacheKey, result.data.id, 'EX', USER_ID_TTL_SECONDS);
    return result.data.id;
  }

  return {
    async deliver(delivery: Delivery, signal: AbortSignal): Promise<DeliveryReceipt> {
      const target = parseTwitterTarget(delivery.target);
      if (!target) throw new PermanentError(`${delivery.target} is not an X target`, { code: 'bad_target' });
      const client = clientFor(signal);
      const text = textFor(delivery.message);
      try {
        if (target.kind === 'post') {
          const posted = await client.tweet(fitPost(text));
          return { peerId: posted.data.id };
        }
        const participant = target.kind === 'user' ? target.id : await userId(client, target.username);
        const sent = await client.sendDmToParticipant(participant, { text: fitDirectMessage(text) });
        // The API wraps the result in `data` (spec: CreateDirectMessagesByParticipantIdResponse); the SDK's type does not.
        const dm = (sent as typeof sent & { data?: typeof sent }).data ?? sent;
        return { peerId: dm.dm_event_id, details: { conversation: dm.dm_conversation_id } };
      } catch (err) {
        if (signal.aborted) throw new RetryableError(`delivery to ${delivery.target} was interrupted`, { code: 'aborted' });
        throw classifyTwitterError(err, delivery.target);
      }
    },
    async close() {
      agent.destroy();
    },
  };
}

/** Send to `apiUrl` instead of X: rewritten before the request is signed, so the OAuth signature covers the real URL. */
function apiBase(apiUrl: string): ITwitterApiClientPlugin {
  return {
    onBeforeRequestConfig({ params }) {
      if (apiUrl !== X_API_URL && params.url.startsWith(`${X_API_URL}/`)) {
        params.url = apiUrl + params.url.slice(X_API_URL.length);
      }
    },
  };
}

function abortOn(signal: AbortSignal): ITwitterApiClientPlugin {
  return {
    onBeforeRequest({ requestOptions }) {
      requestOptions.signal = signal;
    },
  };
}
