/**
 * Prometheus Alertmanager's webhook notification (version 4), and Grafana's
 * webhook contact point (the same shape plus `title` and `message`), turned
 * into one message a person on call reads at a glance.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { escapeHtml } from '../../format.ts';
import { HAS_CONTROL, KEY_MAX_LENGTH } from '../parse-entry.ts';

const labels = z.record(z.string(), z.string());
const alert = z.looseObject({
  status: z.enum(['firing', 'resolved']),
  labels: labels.default({}),
  annotations: labels.default({}),
  startsAt: z.string().default(''),
  endsAt: z.string().default(''),
  generatorURL: z.string().default(''),
  fingerprint: z.string().default(''),
  // Grafana's own links.
  silenceURL: z.string().optional(),
  dashboardURL: z.string().optional(),
  panelURL: z.string().optional(),
});
export const notificationSchema = z.looseObject({
  version: z.string().optional(),
  groupKey: z.string().min(1, 'expected the notification\'s group key'),
  truncatedAlerts: z.number().int().nonnegative().default(0),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string().default(''),
  groupLabels: labels.default({}),
  commonLabels: labels.default({}),
  commonAnnotations: labels.default({}),
  externalURL: z.string().default(''),
  alerts: z.array(alert).min(1, 'expected at least one alert'),
  // Grafana's webhook contact point.
  title: z.string().optional(),
  message: z.string().optional(),
});

export type Notification = z.output<typeof notificationSchema>;
type Alert = Notification['alerts'][number];

/** What the notification becomes: an entry's subject, HTML body, key and id. */
export interface RenderedNotification {
  subject: string;
  body: string;
  key: string;
  id: string;
}

/**
 * Alertmanager's retries and every peer of a cluster send the same
 * notification: its id is a digest of what makes it this notification (the
 * group, its status, and each alert's fingerprint, status and start). The end
 * time of a firing alert is left out: Prometheus moves it forward at every
 * evaluation, and peers may hold different values of it.
 */
export function notificationId(n: Notification): string {
  const alerts = n.alerts.map((a) => `${a.fingerprint || JSON.stringify(sorted(a.labels))}|${a.status}|${a.startsAt}`).sort();
  const digest = createHash('sha256').update(JSON.stringify([n.groupKey, n.status, alerts])).digest('hex');
  return `alertmanager:${digest.slice(0, 32)}`;
}

/** Render within `maxBytes` of HTML: alerts that do not fit are counted instead of shown. */
export function renderNotification(n: Notification, maxBytes: number): RenderedNotification {
  const firing = n.alerts.filter((a) => a.status === 'firing');
  const resolved = n.alerts.filter((a) => a.status === 'resolved');
  const names = [...new Set(n.alerts.map((a) => a.labels.alertname ?? n.commonLabels.alertname ?? 'alert'))];
  const grouping = Object.entries(sorted(n.groupLabels)).filter(([k]) => k !== 'alertname').map(([k, v]) => `${k}=${v}`);
  const status = n.status === 'firing' ? `FIRING:${firing.length}` : 'RESOLVED';
  const subject = n.title?.trim() || `[${status}] ${names.join(', ')}${grouping.length ? ` (${grouping.join(' ')})` : ''}`;
  const links = [n.externalURL ? link(n.externalURL, 'Alertmanager') : ''].filter(Boolean).join(' · ');

  if (n.message?.trim()) {
    // Grafana's contact point rendered its own text: it is what its user chose to read.
    const text = escapeHtml(n.message.trim()).replace(/\r?\n/g, '<br>');
    return { subject, body: bounded(`<p>${text}</p>${links ? `<p>${links}</p>` : ''}`, maxBytes), key: digestKey(n.groupKey), id: notificationId(n) };
  }

  const common = sorted(n.commonLabels);
  // The alert names are in the first line already.
  const shownCommon = Object.fromEntries(Object.entries(common).filter(([k]) => k !== 'alertname'));
  const head = [
    `<p><b>${n.status === 'firing' ? '🔥 FIRING' : '✅ RESOLVED'}</b>: ${escapeHtml(names.join(', '))}`,
    ` — ${firing.length} firing${resolved.length ? `, ${resolved.length} resolved` : ''}</p>`,
    Object.keys(shownCommon).length ? `<p>Labels: ${pairs(shownCommon)}</p>` : '',
    annotationLines(n.commonAnnotations),
  ].join('');
  const footer = `${n.truncatedAlerts > 0 ? `<p>… and ${n.truncatedAlerts} more alert(s) that Alertmanager left out (max_alerts).</p>` : ''}${links ? `<p>${links}</p>` : ''}`;
  // Firing first: what needs a person comes before what is over.
  const items = [...firing, ...resolved].map((a) => alertItem(a, n, common));
  let budget = maxBytes - Buffer.byteLength(head) - Buffer.byteLength(footer) - 200;
  const shown: string[] = [];
  for (const item of items) {
    const size = Buffer.byteLength(item);
    if (size > budget) break;
    shown.push(item);
    budget -= size;
  }
  const left = items.length - shown.length;
  const more = left > 0 ? `<p>… and ${left} more alert(s), too many to show here.</p>` : '';
  return { subject, body: bounded(`${head}<ul>${shown.join('')}</ul>${more}${footer}`, maxBytes), key: digestKey(n.groupKey), id: notificationId(n) };
}

/**
 * A group key names every label of the route's `group_by`, so it can outgrow an
 * entry's `key` (200 characters, no control characters): such a key is
 * replaced by its hash, which folds repeats just as well.
 */
function digestKey(groupKey: string): string {
  if (groupKey.length <= KEY_MAX_LENGTH && !HAS_CONTROL.test(groupKey)) return groupKey;
  return `alertmanager:${createHash('sha256').update(groupKey).digest('hex')}`;
}

function alertItem(a: Alert, n: Notification, common: Record<string, string>): string {
  const own = Object.fromEntries(Object.entries(sorted(a.labels)).filter(([k, v]) => k !== 'alertname' && common[k] !== v));
  const name = a.labels.alertname ?? 'alert';
  const when = a.status === 'firing' ? `since ${shortTime(a.startsAt)}` : `resolved ${shortTime(a.endsAt)}`;
  const annotations = Object.fromEntries(Object.entries(a.annotations).filter(([k, v]) => n.commonAnnotations[k] !== v));
  const silence = a.silenceURL ?? (n.externalURL && a.status === 'firing' ? silenceUrl(n.externalURL, a.labels) : '');
  const links = [
    a.generatorURL ? link(a.generatorURL, 'source') : '',
    a.dashboardURL ? link(a.dashboardURL, 'dashboard') : '',
    a.panelURL ? link(a.panelURL, 'panel') : '',
    silence ? link(silence, 'silence') : '',
  ].filter(Boolean);
  return [
    `<li>${a.status === 'firing' ? '🔥' : '✅'} <b>${escapeHtml(name)}</b> ${escapeHtml(when)}`,
    Object.keys(own).length ? `: ${pairs(own)}` : '',
    annotationLines(annotations, true),
    links.length ? `<br>${links.join(' · ')}` : '',
    '</li>',
  ].join('');
}

/** `summary` then `description`, then any other annotation by name. */
function annotationLines(annotations: Record<string, string>, inline = false): string {
  const order = (k: string) => (k === 'summary' ? 0 : k === 'description' ? 1 : 2);
  const entries = Object.entries(annotations).filter(([, v]) => v.trim() !== '').sort(([a], [b]) => order(a) - order(b) || a.localeCompare(b));
  const lines = entries.map(([k, v]) => (order(k) < 2 ? escapeHtml(v) : `${escapeHtml(k)}: ${escapeHtml(v)}`));
  if (lines.length === 0) return '';
  return inline ? `<br>${lines.join('<br>')}` : `<p>${lines.join('<br>')}</p>`;
}

/** Alertmanager's own "new silence" page, pre-filled with the alert's labels. */
function silenceUrl(externalURL: string, alertLabels: Record<string, string>): string {
  const matchers = Object.entries(sorted(alertLabels)).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
  return `${externalURL.replace(/\/+$/, '')}/#/silences/new?filter=${encodeURIComponent(`{${matchers}}`)}`;
}

function link(url: string, text: string): string {
  // Only web links: a `javascript:` generatorURL is text, not a link.
  return /^https?:\/\//i.test(url) ? `<a href="${escapeHtml(url)}">${escapeHtml(text)}</a>` : '';
}

function pairs(labelSet: Record<string, string>): string {
  return Object.entries(labelSet).map(([k, v]) => `<code>${escapeHtml(k)}=${escapeHtml(v)}</code>`).join(' ');
}

function sorted(labelSet: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labelSet).sort(([a], [b]) => a.localeCompare(b)));
}

/** `2026-12-04 16:10 UTC`; a time Alertmanager leaves unset (`0001-01-01…`) or cannot parse is shown as given. */
function shortTime(iso: string): string {
  const time = Date.parse(iso);
  if (!Number.isFinite(time) || time <= 0) return iso || 'at an unknown time';
  return `${new Date(time).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A last guard: a Grafana message or an alert list is never longer than the body limit. */
function bounded(html: string, maxBytes: number): string {
  if (Buffer.byteLength(html) <= maxBytes) return html;
  const cut = Buffer.from(html).subarray(0, maxBytes - 64).toString('utf8').replace(/<[^>]*$/, '').replace(/\uFFFD+$/, '');
  return `${cut}<p>… (cut at the size limit)</p>`;
}
