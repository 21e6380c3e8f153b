/**
 * What a run prints, and the same as Markdown for the README's Performance
 * section: the targets with their floors, then every figure as printed.
 * `npm run bench -- --readme` writes the Markdown between the README's bench
 * markers, so that the table there is this run's own output, not a copy.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { type Check, type WorkloadResult, meets } from './workload.ts';

export interface Section {
  title: string;
  result?: WorkloadResult;
  error?: string;
  seconds: number;
}

export interface RunInfo {
  startedAt: Date;
  commit: string;
  node: string;
  cpus: number;
  model: string;
  seconds: number;
}

const BEGIN = '<!-- bench:begin';
const END = '<!-- bench:end -->';

/** A value as a reader wants it: 1,951 ms, 104.2 MB, 0.46 KB. */
function shown(value: number, unit: string): string {
  const abs = Math.abs(value);
  const text = abs >= 1000 ? Math.round(value).toLocaleString('en-US') : String(Number(value.toFixed(abs >= 10 ? 1 : 2)));
  return unit === '×' ? `${text}×` : `${text} ${unit}`;
}

/** met, missed, or missed with a floor that misses too: no code can reach that target on this machine. */
function verdict(check: Check): string {
  if (check.pass) return 'met';
  return check.floor && !meets(check.op, check.floor.value, check.target) ? 'missed; the floor misses it too' : 'missed';
}

/** The printed table: every workload's rows, then the targets. */
export function formatTable(sections: Section[], checks: Check[]): string {
  const width = Math.max(30, ...sections.flatMap((s) => (s.result?.rows ?? []).map(([k]) => k.length)));
  const out: string[] = [];
  for (const s of sections) {
    out.push('', `${s.title}  [${s.seconds.toFixed(1)} s]`);
    if (s.error) out.push(`  FAILED: ${s.error.split('\n').join('\n  ')}`);
    for (const [key, value] of s.result?.rows ?? []) out.push(`  ${key.padEnd(width)}  ${value}`);
  }
  if (checks.length) {
    out.push('', 'Targets');
    const w = Math.max(...checks.map((c) => c.name.length));
    for (const c of checks) {
      const margin = Math.abs(c.value - c.target);
      const floor = c.floor ? ` · floor ${shown(c.floor.value, c.unit)}` : '';
      out.push(`  ${c.pass ? 'PASS' : 'MISS'}  ${c.name.padEnd(w)}  ${shown(c.value, c.unit)}${c.pass ? '' : ` (misses by ${shown(margin, c.unit)})`}${floor}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** The README block: which run, the targets against their floors, every figure folded below. */
export function markdownReport(run: RunInfo, sections: Section[], checks: Check[]): string {
  const cell = (text: string) => text.replaceAll('|', '\\|');
  const date = `${run.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return [
    `${BEGIN}: written by \`npm run bench -- --readme\`; change the bench, not this block -->`,
    `\`npm run bench\` of ${date}, commit \`${run.commit}\`, Node ${run.node}, ${run.cpus} × ${run.model}, ${Math.round(run.seconds)} s.`,
    '',
    '| target | this run | floor, measured in the same run | |',
    '|---|---|---|---|',
    ...checks.map((c) => `| ${cell(c.name)} | **${shown(c.value, c.unit)}** | ${c.floor ? cell(`${shown(c.floor.value, c.unit)}: ${c.floor.what}`) : ''} | ${verdict(c)} |`),
    '',
    '<details><summary>Every figure of this run, as the bench printed it</summary>',
    '',
    '```text',
    formatTable(sections, []).trim(),
    '```',
    '',
    '</details>',
    END,
  ].join('\n');
}

/** Where the README's bench block is; a README without one is an error, not a silent no-op. */
export function readmeBlock(readmePath: string): { text: string; begin: number; end: number } {
  const text = readFileSync(readmePath, 'utf8');
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${readmePath} has no bench block to rewrite (a line starting "${BEGIN}" and a later "${END}")`);
  return { text, begin, end: end + END.length };
}

/** Put `block` between the README's bench markers. */
export function writeIntoReadme(readmePath: string, block: string): void {
  const { text, begin, end } = readmeBlock(readmePath);
  writeFileSync(readmePath, text.slice(0, begin) + block + text.slice(end));
}
