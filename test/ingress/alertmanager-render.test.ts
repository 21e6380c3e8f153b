/** The message made of an Alertmanager notification: escaping, links, size, and the id peers agree on. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { notificationId, notificationSchema, renderNotification } from '../../core/ingress/http/alertmanager.ts';
import { toPlainText } from '../../core/format.ts';
import { notification } from './support.ts';

const parse = (payload: Record<string, unknown>) => notificationSchema.parse(payload);

describe('Alertmanager notifications as messages', () => {
  test('label values and annotations are text, never markup; only web links are links', () => {
    const payload = notification({ status: 'firing', alerts: [{ name: 'Inject', instance: '<img src=x onerror=alert(1)>', summary: '<script>alert(1)</script> & more' }] });
    (payload.alerts as Array<Record<string, unknown>>)[0]!.generatorURL = 'javascript:alert(1)';
    const { body } = renderNotification(parse(payload), 64 * 1024);
    assert.ok(!body.includes('<img') && !body.includes('<script>'), body);
    assert.ok(!body.includes('javascript:'), 'a javascript: generatorURL is not linked');
    assert.match(toPlainText(body), /instance=<img src=x onerror=alert\(1\)>/, 'the value is shown as it is');
    assert.match(toPlainText(body), /<script>alert\(1\)<\/script> & more/);
  });

  test('a notification of many alerts stays within the body limit and counts what it leaves out', () => {
    const alerts = Array.from({ length: 2000 }, (_, i) => ({ name: 'DiskFull', instance: `host-${i}.example.org:9100`, summary: `disk ${i} is ${'very '.repeat(10)}full` }));
    const { body } = renderNotification(parse(notification({ status: 'firing', alerts })), 64 * 1024);
    assert.ok(Buffer.byteLength(body) <= 64 * 1024, `${Buffer.byteLength(body)} bytes`);
    const shown = body.split('<li>').length - 1;
    assert.ok(shown > 10, `${shown} alerts shown`);
    assert.match(body, new RegExp(`… and ${2000 - shown} more alert\\(s\\), too many to show here`));
  });

  test('the id: the same for a peer\'s copy (other end times, other order), new for a change of status or alerts', () => {
    const alerts = [{ name: 'A', instance: 'one' }, { name: 'A', instance: 'two' }];
    const first = parse(notification({ status: 'firing', alerts }));
    const copy = parse(notification({ status: 'firing', alerts: [...alerts].reverse() }));
    for (const a of copy.alerts) a.endsAt = '2026-12-04T11:04:00Z';
    copy.externalURL = 'http://peer-2:9093';
    assert.equal(notificationId(copy), notificationId(first));
    assert.notEqual(notificationId(parse(notification({ status: 'resolved', alerts }))), notificationId(first));
    assert.notEqual(notificationId(parse(notification({ status: 'firing', alerts: [...alerts, { name: 'A', instance: 'three' }] }))), notificationId(first));
    assert.match(notificationId(first), /^alertmanager:[0-9a-f]{32}$/);
  });
});
