import { z } from 'notification-hub/plugin-api';

/** X's own API; a test or a proxy points `apiUrl` elsewhere. The `/2/…` paths are appended to it. */
export const X_API_URL = 'https://api.x.com';

const credential = (what: string) => z.string().min(1, `the ${what} is empty`);

/** OAuth 1.0a user context: the app's consumer key and secret, and the posting account's access token and secret. */
export const twitterSettings = z.object({
  appKey: credential('app (consumer) key'),
  appSecret: credential('app (consumer) secret'),
  accessToken: credential('access token'),
  accessSecret: credential('access token secret'),
  apiUrl: z
    .url({ protocol: /^https?$/ })
    .default(X_API_URL)
    .transform((url) => url.replace(/\/+$/, '')),
});

export type TwitterSettings = z.output<typeof twitterSettings>;
