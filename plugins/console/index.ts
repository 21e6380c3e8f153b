/**
 * The console channel: each delivery is one JSON line in the hub's own log on
 * stdout. It needs no settings, so the quick start's first message lands
 * somewhere a newcomer sees it; it also suits a dry run of a mapping, and a
 * log collector that already reads the hub's lines. The line goes through the
 * hub's logger (so it never interleaves with log lines, and configured secrets
 * are blanked) at level info whatever LOG_LEVEL says: a delivery is not a
 * log message that a quieter level may drop.
 */
import { PLUGIN_API_VERSION, definePlugin, oneLine, toPlainText, z } from 'notification-hub/plugin-api';

/** A name for whoever reads the console: `operator`, `ops`, `dry-run`. */
const TARGET = /^[^\s\u0000-\u001f\u007f]{1,100}$/u;

export default definePlugin({
  name: 'console',
  apiVersion: PLUGIN_API_VERSION,
  description: 'print each notification as one JSON line on stdout (the hub log); needs no settings',
  settings: { schema: z.object({}) },
  validateTarget: (target) =>
    TARGET.test(target) ? undefined : `${JSON.stringify(target)} is not a console target: write a short name without spaces for whoever reads the console, such as "operator"`,

  createSender: ({ logger }) => {
    const out = logger.child({}, { level: 'info' });
    return {
      async deliver({ id, messageId, target, message }) {
        const { to, subject, body, format } = message;
        const text = toPlainText(body, format);
        const summary = oneLine(subject ? `${subject}: ${text}` : text, 200);
        out.info({ notification: messageId, delivery: id, target, to, subject, text }, `${to.join(', ')} → ${target}: ${summary}`);
        return {};
      },
    };
  },
});
