import { PLUGIN_API_VERSION, definePlugin, loadSender } from 'notification-hub/plugin-api';
import { type TwitterSettings, twitterSettings } from './settings.ts';
import { normalizeTwitterTarget, validateTwitterTarget } from './targets.ts';

export default definePlugin<TwitterSettings>({
  name: 'twitter',
  apiVersion: PLUGIN_API_VERSION,
  description: 'X (Twitter): public posts and direct messages through the v2 API (twitter-api-v2), as plain text cut to the limit',
  settings: {
    schema: twitterSettings,
    env: {
      appKey: 'TWITTER_APP_KEY',
      appSecret: 'TWITTER_APP_SECRET',
      accessToken: 'TWITTER_ACCESS_TOKEN',
      accessSecret: 'TWITTER_ACCESS_SECRET',
      apiUrl: 'TWITTER_API_URL',
    },
    secrets: ['appKey', 'appSecret', 'accessToken', 'accessSecret'],
  },
  validateTarget: validateTwitterTarget,
  normalizeTarget: normalizeTwitterTarget,
  createSender: loadSender(import.meta.url, './sender', 'createTwitterSender'),
});
