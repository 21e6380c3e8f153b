/**
 * A real Prometheus Alertmanager posting to the hub's HTTP ingress: alerts
 * pushed through its /api/v2/alerts arrive in the homeserver's room, firing
 * and then resolved; two clustered Alertmanagers that both notify are heard
 * once per notification.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { type Homeserver, startHomeserver } from '../servers/matrix/index.ts';
import { startAlertmanager, type TestAlertmanager } from '../servers/alertmanager.ts';
import { type MatrixBot, idle, matrixEnv } from '../support/e2e.ts';
import { eventually, startTestHub, type TestHub } from '../support/hub.ts';
import { ALERTS_TOKEN, TOKENS } from './support.ts';

describe('a real Alertmanager → HTTP ingress → the room', () => {
  let hs: Homeserver;
  let bot: MatrixBot;
  let hub: TestHub;
  let port: number;
  const rooms: Record<string, string> = {};
  const alertmanagers: TestAlertmanager[] = [];

  before(async () => {
    hs = await startHomeserver();
    bot = hs.registerUser('bot');
    rooms.alerts = hs.createRoom(bot.userId, { name: 'alerts' });
    rooms.ops = hs.createRoom(bot.userId, { name: 'ops' });
    hub = await startTestHub({
      name: 'alertmanager',
      mapping: { '#alerts': { matrix: [rooms.alerts] }, '#ops': { matrix: [rooms.ops] } },
      env: { ...matrixEnv(hs, bot), HUB_INGRESS_TOKENS: JSON.stringify(TOKENS) },
      config: { logLevel: 'info', httpIngress: { port: 0, host: '127.0.0.1' } },
    });
    port = hub.app.cradle.httpIngress.port!;
  });
  after(async () => {
    await Promise.all(alertmanagers.map((am) => am.close()));
    await hub?.stop();
    await hs?.close();
  });

  const alerts = (name: string, endsAt?: string) =>
    ['web-1:9100', 'web-2:9100'].map((instance) => ({
      labels: { alertname: name, instance, job: 'web', severity: 'page' },
      annotations: { summary: `${name} on ${instance}`, description: 'more than 5 % of requests fail' },
      generatorURL: `http://prometheus.example.org/graph?g0.expr=${encodeURIComponent(`rate(errors{instance="${instance}"}[5m])`)}`,
      // Prometheus sends the start of the alert; every peer then agrees on it.
      startsAt: '2026-12-04T10:00:00.000Z',
      ...(endsAt ? { endsAt } : {}),
    }));
  const bodies = (room: string) => hs.messages(room).map((e) => String(e.content.body));

  test('alerts pushed to Alertmanager arrive firing, then resolved', async () => {
    const am = await startAlertmanager({ webhookUrl: `http://127.0.0.1:${port}/v1/alertmanager/alerts`, token: ALERTS_TOKEN });
    alertmanagers.push(am);
    await am.pushAlerts(alerts('ErrorRate'));
    // Both alerts in one notification: on a loaded machine Alertmanager may first send the group with the one
    // alert it had taken in when its group_wait (300 ms) ran out, then the whole group a group_interval later.
    const whole = () => bodies(rooms.alerts!).find((b) => b.startsWith('[FIRING:2] ErrorRate'));
    await eventually('the firing notification of both alerts in the room', () => whole() !== undefined, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${bodies(rooms.alerts!).join('\n---\n')}\n${am.output().slice(-3000)}`);
    });
    const firing = whole()!;
    for (const expected of ['[FIRING:2] ErrorRate', 'job=web', 'instance=web-1:9100', 'instance=web-2:9100', 'ErrorRate on web-2:9100', 'more than 5 % of requests fail', `${am.url}/#/silences/new?filter=`]) {
      assert.ok(firing.includes(expected), `the firing message says ${expected}:\n${firing}`);
    }
    await am.pushAlerts(alerts('ErrorRate', new Date(Date.now() - 1000).toISOString()));
    const resolved = () => bodies(rooms.alerts!).find((b) => b.startsWith('[RESOLVED] ErrorRate'));
    await eventually('the resolved notification in the room', () => resolved() !== undefined, 30_000);
    assert.match(resolved()!, /✅ ErrorRate resolved/);
    assert.ok(bodies(rooms.alerts!).indexOf(resolved()!) > bodies(rooms.alerts!).indexOf(firing), 'resolved after firing');
  });

  test('two clustered Alertmanagers that both notify: each notification is delivered once', async () => {
    const webhookUrl = `http://127.0.0.1:${port}/v1/alertmanager/ops`;
    // No peer timeout and slow gossip: the second peer does not learn in time that the first has notified, so
    // both send (Alertmanager's own duplicates, prometheus/alertmanager#4108, #2222, #1718).
    const first = await startAlertmanager({ webhookUrl, token: ALERTS_TOKEN, peers: [], peerTimeout: '0s', slowGossip: true });
    alertmanagers.push(first);
    const second = await startAlertmanager({ webhookUrl, token: ALERTS_TOKEN, peers: [first.clusterAddress], peerTimeout: '0s', slowGossip: true });
    alertmanagers.push(second);
    // Whether both peers send one notification depends on Alertmanager's timing: on a loaded machine the
    // gossip may arrive in time after all. A new alert group is tried (up to three) until the hub has seen a
    // peer's copy; every group tried must still be heard once per notification.
    const names: string[] = [];
    let duplicates = 0;
    let accepted = 0;
    for (let round = 1; round <= 3 && duplicates === 0; round++) {
      const name = round === 1 ? 'DiskFull' : `DiskFull${round}`;
      names.push(name);
      const heard = () => bodies(rooms.ops!).filter((b) => b.split('\n')[0]!.endsWith(` ${name}`));
      // Prometheus sends every alert to every Alertmanager of the cluster.
      await Promise.all([first.pushAlerts(alerts(name)), second.pushAlerts(alerts(name))]);
      await eventually(`the firing notification of ${name} in the room`, () => heard().length >= 1, 30_000);
      const resolvedAt = new Date(Date.now() - 1000).toISOString();
      await Promise.all([first.pushAlerts(alerts(name, resolvedAt)), second.pushAlerts(alerts(name, resolvedAt))]);
      await eventually(`the resolved notification of ${name} in the room`, () => heard().some((b) => b.startsWith('[RESOLVED]')), 30_000);
      // The peers' copies come within a group interval (1 s) of each other: wait two, then count.
      await sleep(2500);
      await idle(hub);
      accepted = Number(/hub_http_ingress_requests_total\{endpoint="alertmanager",status="202"\} (\d+)/.exec(await hub.app.cradle.metrics.registry.metrics())?.[1] ?? 0);
      duplicates = (await hub.read('events')).filter((e) => e.type === 'duplicate').length;
    }
    console.log(`alertmanager posts accepted: ${accepted} in all, ${duplicates} of them peers' copies folded by their id (alert groups tried: ${names.join(', ')})`);
    assert.ok(duplicates >= 1, `both peers sent one notification at least once in ${names.length} alert groups (else this test shows nothing of the hub)`);
    // On a loaded machine a peer may also notify once before it holds both alerts ([FIRING:1]): a notification
    // of its own, rightly delivered. What the hub must not do is deliver any one notification twice.
    const seen = bodies(rooms.ops!);
    assert.deepEqual(seen, [...new Set(seen)], 'each notification once');
    const heads = seen.map((b) => b.split('\n')[0]);
    for (const name of names) {
      assert.ok(heads.includes(`[FIRING:2] ${name}`), heads.join(' | '));
      assert.equal(heads.filter((h) => h === `[RESOLVED] ${name}`).length, 1, heads.join(' | '));
    }
    assert.equal(heads.at(-1), `[RESOLVED] ${names.at(-1)}`);
  });
});
