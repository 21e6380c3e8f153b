import { PLUGIN_API_VERSION, definePlugin, loadSender } from 'notification-hub/plugin-api';
import { type SlackSettings, slackSettings } from './settings.ts';
import { normalizeSlackTarget, validateSlackTarget } from './targets.ts';

export default definePlugin<SlackSettings>({
  name: 'slack',
  apiVersion: PLUGIN_API_VERSION,
  description: 'Slack channels, private channels and direct messages through the Web API (chat.postMessage), as mrkdwn',
  settings: {
    schema: slackSettings,
    env: { token: 'SLACK_TOKEN', apiUrl: 'SLACK_API_URL' },
    secrets: ['token'],
  },
  validateTarget: validateSlackTarget,
  normalizeTarget: normalizeSlackTarget,
  createSender: loadSender(import.meta.url, './sender', 'createSlackSender'),
});
