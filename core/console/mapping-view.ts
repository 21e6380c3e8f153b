/** The mapping as the console shows it: a table of group → channel → targets, and what changed between two revisions. */
import type { Mapping } from '../mapping/validate.ts';

export interface MappingRow {
  group: string;
  channel: string;
  targets: string[];
  /** `after 10m, every 5m, 3 times` when the group escalates over this channel. */
  escalates?: string;
}

export function mappingTable(mapping: Mapping | undefined): MappingRow[] {
  const rows: MappingRow[] = [];
  for (const [group, { routes, escalate }] of mapping?.groups ?? []) {
    const byChannel = new Map<string, string[]>();
    for (const route of routes) byChannel.set(route.channel, [...(byChannel.get(route.channel) ?? []), route.target]);
    const escalating = new Set(escalate?.routes.map((r) => r.channel) ?? []);
    for (const [channel, targets] of byChannel) {
      rows.push({
        group,
        channel,
        targets,
        ...(escalate && escalating.has(channel) ? { escalates: `after ${minutes(escalate.afterMs)}, every ${minutes(escalate.everyMs)}, ${escalate.repeat} time(s)` } : {}),
      });
    }
  }
  return rows.sort((a, b) => a.group.localeCompare(b.group) || a.channel.localeCompare(b.channel));
}

function minutes(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;
}

export interface Change {
  path: string;
  before?: unknown;
  after?: unknown;
}

/** Every leaf that differs, by its document path (`mapping["#ops"].matrix[0]`), as the validator names paths. */
export function diffDocuments(before: unknown, after: unknown): Change[] {
  const a = leaves(before);
  const b = leaves(after);
  const changes: Change[] = [];
  for (const [path, value] of a) {
    if (!b.has(path)) changes.push({ path, before: value });
    else if (JSON.stringify(b.get(path)) !== JSON.stringify(value)) changes.push({ path, before: value, after: b.get(path) });
  }
  for (const [path, value] of b) if (!a.has(path)) changes.push({ path, after: value });
  return changes.sort((x, y) => x.path.localeCompare(y.path));
}

function leaves(value: unknown, path = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (Array.isArray(value)) value.forEach((item, i) => leaves(item, `${path}[${i}]`, out));
  else if (value !== null && typeof value === 'object' && Object.keys(value).length > 0) {
    for (const [key, item] of Object.entries(value)) {
      if (path === '' && key.startsWith('_')) continue; // _id, _rev: the document's, not the mapping's
      leaves(item, path === '' ? key : /^[A-Za-z_][\w]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`, out);
    }
  } else out.set(path, value);
  return out;
}
