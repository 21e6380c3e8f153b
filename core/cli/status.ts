import { Command } from 'commander';
import { HubError } from '../errors.ts';
import { type DigestStatus, openWindows } from '../digest/status.ts';
import { messageStatus } from '../status/message.ts';
import { overview } from '../status/streams.ts';
import { print, withApp } from './context.ts';

export function statusCommand(): Command {
  return new Command('status')
    .description('backlog, live workers and mapping; or, given a message id, every target, attempt and peer id of that message')
    .argument('[msgId]', 'the entry id XADD returned, or the producer\'s own id')
    .option('--json', 'machine-readable output')
    .action(async (msgId: string | undefined, opts: { json?: boolean }) => {
      await withApp(async (app) => {
        const { redis, keys, channelNames, redactor } = app.cradle;
        const json = opts.json ?? false;
        if (msgId) {
          const status = await messageStatus(redis, keys, msgId);
          if (!status) throw new HubError('HUB_ERR_NOT_FOUND', `no message ${msgId} is known (records are kept for the configured retention); check the id XADD returned`);
          return print(JSON.parse(redactor.redact(JSON.stringify(status))), json, () => redactor.redact(describeMessage(status)));
        }
        const [o, mapping, windows] = await Promise.all([overview(redis, keys, channelNames), redis.hmget(keys.mapping, 'revision', 'at'), openWindows(redis, keys)]);
        const result = { ...o, mapping: { revision: mapping[0], since: mapping[1] ? new Date(Number(mapping[1])).toISOString() : null }, throttleWindows: windows };
        print(result, json, () =>
          [
            `mapping    ${mapping[0] ?? 'none loaded yet'}`,
            `hubs       ${o.hubs} alive; ingress ${o.ingress.lag} waiting, ${o.ingress.pending} in progress`,
            ...o.channels.map(
              (c) =>
                `${c.channel.padEnd(10)} ${c.lag} waiting, ${c.pending} in progress, ${c.workers} worker(s)${c.down ? `  ← down: ${redactor.redact(c.down)}` : c.workers === 0 && c.length > 0 ? '  ← no live worker: deliveries wait' : ''}`,
            ),
            `dead       ${o.dead} dead letter(s)${o.dead ? ' (hub dead list)' : ''}`,
            `throttle   ${windows.count} open window(s)${windows.count > windows.first.length ? `, the first ${windows.first.length} to close:` : windows.count ? ':' : ''}`,
            ...windows.first.map((w) => `  ${describeDigest(w)}`),
          ].join('\n'),
        );
      });
    });
}

function describeMessage(s: Awaited<ReturnType<typeof messageStatus>> & object): string {
  const lines = [`message ${s.entry}${s.producerId ? ` (id ${s.producerId})` : ''} to ${s.to?.join(', ') ?? '?'}${s.subject ? `: ${s.subject}` : ''}`];
  if (s.receivedAt) lines.push(`received ${s.receivedAt}${s.producer ? ` from producer ${s.producer}` : ''}, mapping ${s.revision}`);
  for (const d of s.deliveries) {
    const details = Object.entries(d.details ?? {}).map(([key, value]) => `${key} ${value}`).join(', ');
    lines.push(`  ${d.state.padEnd(8)} ${d.channel} ${d.target}${d.attempts ? `  attempts ${d.attempts}` : ''}${d.peerId ? `  peer id ${d.peerId}` : ''}${details ? ` (${details})` : ''}${d.error && d.state !== 'sent' ? `  last error: ${d.error}` : ''}`);
    for (const h of d.history ?? []) lines.push(`           ${h.at} ${h.result}${h.error ? `: ${h.error}` : ''}`);
  }
  for (const dead of s.deadLetters) lines.push(`  dead     ${dead.id} (${dead.stage}): ${dead.reason}`);
  for (const d of s.heldIn ?? []) lines.push(`held in  ${describeDigest(d)}`);
  if (s.digest) lines.push(`digest   ${describeDigest(s.digest)}`);
  const e = s.escalation;
  if (e) {
    const ack = e.acknowledged ? `, ${e.acknowledged.how} by ${e.acknowledged.by} at ${e.acknowledged.at}` : '';
    lines.push(`escalation ${e.state}: round ${e.round} of ${e.rounds}${e.nextDueAt ? `, next due ${e.nextDueAt}` : ''}${ack}${e.readBy.length ? `; read by ${e.readBy.map((r) => r.by).join(', ')}` : ''}`);
  }
  return lines.join('\n');
}

function describeDigest(d: DigestStatus): string {
  const when = d.state === 'sent' ? `sent ${d.sentAt}` : d.state === 'open' ? `window closes ${d.closesAt}` : 'closed, being sent';
  return `${d.id} of ${d.group} key ${JSON.stringify(d.key)}: ${d.held} held, ${when}`;
}
