import { z } from 'notification-hub/plugin-api';

/** Slack's own Web API; a test or a proxy points `apiUrl` elsewhere. */
export const SLACK_API_URL = 'https://slack.com/api/';

export const slackSettings = z.object({
  /** A bot token (`xoxb-…`) with the `chat:write` scope. */
  token: z.string().regex(/^xox[a-z]-\S+$/, 'is not a Slack token: expected a bot token such as xoxb-…'),
  /** The Web API base; the SDK appends the method name, so it must end with `/`. */
  apiUrl: z
    .url({ protocol: /^https?$/ })
    .default(SLACK_API_URL)
    .transform((url) => (url.endsWith('/') ? url : `${url}/`)),
});

export type SlackSettings = z.output<typeof slackSettings>;
