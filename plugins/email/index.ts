import { PLUGIN_API_VERSION, definePlugin, loadSender } from 'notification-hub/plugin-api';
import { settingsSchema } from './settings.ts';
import { normalizeTarget, validateTarget } from './targets.ts';

export default definePlugin({
  name: 'email',
  apiVersion: PLUGIN_API_VERSION,
  description: 'Email over SMTP (nodemailer, pooled): HTML with a plain-text part, to a@b.c or Name <a@b.c>',
  settings: {
    schema: settingsSchema,
    env: { url: 'SMTP_URL', from: 'EMAIL_FROM' },
    secrets: ['url'],
  },
  validateTarget,
  normalizeTarget,
  createSender: loadSender(import.meta.url, './sender', 'createEmailSender'),
});
