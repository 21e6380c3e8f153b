/**
 * Summaries of the V8 CPU profiles the children write with --profile: self
 * time per function and per place (a package of node_modules, a file of
 * core/ or plugins/, Node's internals, GC, idle), so that a profile says in
 * a few lines where a process spends its time.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './context.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  process: string;
  totalMs: number;
  /** Time not idle. */
  busyMs: number;
  places: Array<{ place: string; ms: number; pct: number }>;
  functions: Array<{ fn: string; place: string; ms: number; pct: number }>;
  /** Time with the function anywhere on the stack (its callees included). */
  inclusive: Array<{ fn: string; ms: number; pct: number }>;
}

function placeOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return `npm:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (path.startsWith('node:')) return path.startsWith('node:internal') ? `node:${path.split('/')[1] ?? 'internal'}` : path;
  if (path.startsWith(ROOT)) return path.slice(ROOT.length);
  return path;
}

export function summarizeProfile(file: string, name: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const places = new Map<string, number>();
  const functions = new Map<string, { place: string; us: number }>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    total += us;
    if (functionName === '(idle)') idle += us;
    const place = placeOf(url, functionName);
    places.set(place, (places.get(place) ?? 0) + us);
    const key = `${functionName || '(anonymous)'} ${url ? `${place}:${lineNumber + 1}` : ''}`.trim();
    const f = functions.get(key) ?? { place, us: 0 };
    f.us += us;
    functions.set(key, f);
  }
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const { functionName, url, lineNumber } = byId.get(at)!.callFrame;
      if (!url || functionName === '(root)') continue;
      const key = `${functionName || '(anonymous)'} ${placeOf(url, functionName)}:${lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const pct = (us: number) => Math.round((us / Math.max(1, busy)) * 1000) / 10;
  return {
    process: name,
    totalMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    places: [...places].filter(([p]) => p !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top).map(([place, us]) => ({ place, ms: Math.round(us / 1000), pct: pct(us) })),
    functions: [...functions].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1].us - a[1].us).slice(0, top).map(([fn, f]) => ({ fn, place: f.place, ms: Math.round(f.us / 1000), pct: pct(f.us) })),
    inclusive: [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top * 4).map(([fn, us]) => ({ fn, ms: Math.round(us / 1000), pct: pct(us) })),
  };
}

export function summarizeProfiles(dir: string): { data: ProfileSummary[]; text: string } {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const data = files.map((f) => summarizeProfile(join(dir, f), f.replace(/\.cpuprofile$/, '')));
  const lines: string[] = [`CPU profiles (${dir}); % of busy (non-idle) time`];
  for (const s of data) {
    lines.push('', `${s.process}: busy ${s.busyMs} ms of ${s.totalMs} ms`);
    lines.push(`  by place:    ${s.places.slice(0, 8).map((p) => `${p.place} ${p.pct}%`).join(' · ')}`);
    for (const f of s.functions.slice(0, 10)) lines.push(`  ${String(f.pct).padStart(5)}%  ${f.fn}`);
  }
  return { data, text: lines.join('\n') };
}

// `npx node bench/lib/profile.ts <file.cpuprofile|dir>`: the same summary for profiles made by hand.
if (import.meta.main) {
  const target = process.argv[2];
  if (!target) throw new Error('usage: node bench/lib/profile.ts <file.cpuprofile | folder>');
  if (target.endsWith('.cpuprofile')) {
    const s = summarizeProfile(target, target, 30);
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  } else process.stdout.write(`${summarizeProfiles(target).text}\n`);
}
