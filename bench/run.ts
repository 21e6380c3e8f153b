/**
 * `npm run bench [-- <workload>…] [--profile] [--concurrency N]`
 *
 * Runs the workloads (all by default: delivery, routing, latency,
 * propagation, width, workers, e2ee, ingress), prints a table, and writes the figures to
 * bench/results/<timestamp>.json and bench/results/latest.json. With
 * --profile, every child process writes a V8 CPU profile, summarized into
 * the JSON and the output (profiles slow the children: use the figures of a
 * run without it for the targets). The hub and worker processes run with the
 * environment and Node flags of `npm start` (package.json), as users run them; --node-arg adds
 * one (e.g. --node-arg=--max-semi-space-size=2), repeatable.
 * --compiled runs them from a tsc build (tsconfig.build.json, as the
 * Dockerfile does) instead of the TypeScript sources. Every run also writes
 * its targets and figures as Markdown (bench/results/<timestamp>.md); with
 * --readme, a full run on `npm start`'s flags writes it into the README's
 * Performance section.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type BenchContext, ROOT, compileHub, createContext } from './lib/context.ts';
import { interrupted, stopAll } from './lib/proc.ts';
import { summarizeProfiles } from './lib/profile.ts';
import { type Section, formatTable, markdownReport, readmeBlock, writeIntoReadme } from './lib/report.ts';
import { warmStart } from './lib/warm-start.ts';
import type { Workload } from './lib/workload.ts';
import { delivery } from './workloads/delivery.ts';
import { routing } from './workloads/routing.ts';
import { latency } from './workloads/latency.ts';
import { propagation } from './workloads/propagation.ts';
import { width } from './workloads/width.ts';
import { workers } from './workloads/workers.ts';
import { e2ee } from './workloads/e2ee.ts';
import { throttle } from './workloads/throttle.ts';
import { ingress } from './workloads/ingress.ts';

const WORKLOADS: Workload[] = [delivery, routing, latency, propagation, width, workers, e2ee, throttle, ingress];

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

/**
 * How `npm start` runs the hub (`exec env A=1 node --a --b core/cli/main.ts start`):
 * its environment and Node flags, what the bench measures by default.
 */
function startCommand(): { nodeEnv: Record<string, string>; nodeArgs: string[] } {
  const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start ?? '';
  const words = start.split(/\s+/);
  const node = words.indexOf('node');
  const nodeEnv = Object.fromEntries(words.slice(0, node).filter((w) => /^[A-Z_]+=/.test(w)).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  const nodeArgs = words.slice(node + 1).filter((w, i, all) => w.startsWith('--') && all.slice(0, i).every((v) => v.startsWith('--')));
  return { nodeEnv, nodeArgs };
}

/** A mistake in how the bench was asked to run, or a README it cannot write: said in a sentence, exit code 2. */
class BenchError extends Error {}

function asBenchError(write: () => void): void {
  try {
    write();
  } catch (err) {
    throw new BenchError((err as Error).message);
  }
}

function parseArgs(argv: string[]): { names: string[]; profile: boolean; concurrency: number; nodeArgs: string[]; nodeEnv: Record<string, string>; compiled: boolean; readme: boolean } {
  const names: string[] = [];
  const { nodeArgs, nodeEnv } = startCommand();
  let profile = false;
  let compiled = false;
  let readme = false;
  let concurrency = 10;
  const startFlags = nodeArgs.length;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === '--profile') profile = true;
    else if (arg === '--compiled') compiled = true;
    else if (arg === '--readme') readme = true;
    else if (arg === '--node-arg' || arg.startsWith('--node-arg=')) nodeArgs.push(arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i]!);
    else if (arg === '--concurrency' || arg.startsWith('--concurrency=')) {
      concurrency = Number(arg.includes('=') ? arg.split('=')[1] : argv[++i]);
      if (!Number.isInteger(concurrency) || concurrency < 1) throw new BenchError('--concurrency: expected a whole number ≥ 1');
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`usage: npm run bench -- [${WORKLOADS.map((w) => w.name).join('|')} …] [--profile] [--compiled] [--concurrency N] [--node-arg=<flag for hub and worker processes>]… [--readme]\n`);
      process.exit(0);
    } else if (arg.startsWith('-')) throw new BenchError(`unknown option ${arg}`);
    else names.push(arg);
  }
  for (const name of names) {
    if (!WORKLOADS.some((w) => w.name === name)) throw new BenchError(`no workload named "${name}"; there are: ${WORKLOADS.map((w) => w.name).join(', ')}`);
  }
  // The README shows what users run: every workload, `npm start`'s flags, no profiler slowing the children.
  if (readme && (names.length || profile || compiled || concurrency !== 10 || nodeArgs.length > startFlags)) {
    throw new BenchError('--readme writes the README from a full run as `npm start` runs: every workload, no --profile, --compiled, --concurrency or --node-arg');
  }
  return { names, profile, concurrency, nodeArgs, nodeEnv, compiled, readme };
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const readme = join(ROOT, 'README.md');
  // Before five minutes of work, not after.
  if (args.readme) asBenchError(() => readmeBlock(readme));
  const selected = args.names.length ? WORKLOADS.filter((w) => args.names.includes(w.name)) : WORKLOADS;
  const runId = stamp();
  const runDir = join(RESULTS, 'runs', runId);
  const logDir = join(runDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const profileDir = args.profile ? join(runDir, 'profiles') : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const build = args.compiled ? compileHub(mkdtempSync(join(tmpdir(), 'hub-bench-build-'))) : undefined;
  const ctx: BenchContext & { close(): Promise<void> } = createContext({ runId: runId.replace(/[_-]/g, '').slice(2), logDir, profileDir, concurrency: args.concurrency, nodeArgs: args.nodeArgs, nodeEnv: args.nodeEnv, ...build });

  const started = Date.now();
  const load = loadavg();
  process.stdout.write(`notification-hub bench ${runId} · ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} · load ${load.map((l) => l.toFixed(2)).join(' ')} · Node ${process.version}${args.profile ? ' · CPU profiles on (slower)' : ''}${args.nodeArgs.length ? ` · hub/worker flags ${[...Object.entries(args.nodeEnv).map(([k, v]) => `${k}=${v}`), ...args.nodeArgs].join(' ')}` : ''}${build ? ` · hub/worker compiled (tsc → ${build.hubRoot})` : ''}\n`);
  process.stdout.write(`workloads: ${selected.map((w) => w.name).join(', ')} · child logs in ${logDir}\n`);

  const sections: Array<Section & { name: string }> = [];
  try {
    await warmStart(ctx);
    for (const workload of selected) {
      if (interrupted()) break;
      const t0 = Date.now();
      process.stdout.write(`… ${workload.title}\n`);
      try {
        const result = await workload.run(ctx);
        sections.push({ name: workload.name, title: workload.title, result, seconds: (Date.now() - t0) / 1000 });
      } catch (err) {
        sections.push({ name: workload.name, title: workload.title, error: (err as Error).stack ?? String(err), seconds: (Date.now() - t0) / 1000 });
      } finally {
        await stopAll();
      }
    }
  } finally {
    await stopAll();
    await ctx.close();
    if (build) rmSync(build.hubRoot, { recursive: true, force: true });
  }

  const checks = sections.flatMap((s) => s.result?.checks ?? []);
  process.stdout.write(formatTable(sections, checks));
  const profiles = profileDir ? summarizeProfiles(profileDir) : undefined;
  if (profiles) process.stdout.write(`\n${profiles.text}\n`);

  const report = {
    runId,
    commit: gitCommit(),
    node: process.version,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGb: Math.round(totalmem() / 2 ** 30), loadAverageAtStart: load },
    options: { concurrency: args.concurrency, profile: args.profile, nodeArgs: args.nodeArgs, nodeEnv: args.nodeEnv, compiled: args.compiled, workloads: selected.map((w) => w.name) },
    seconds: (Date.now() - started) / 1000,
    workloads: Object.fromEntries(sections.map((s) => [s.name, { title: s.title, seconds: s.seconds, ...(s.error ? { error: s.error } : {}), ...(s.result ? { figures: s.result.figures, checks: s.result.checks } : {}) }])),
    checks,
    ...(profiles ? { profiles: profiles.data, profileDir } : {}),
    logDir,
  };
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(join(RESULTS, `${runId}.json`), json);
  writeFileSync(join(RESULTS, 'latest.json'), json);
  const markdown = markdownReport({ startedAt: new Date(started), commit: report.commit, node: process.version, cpus: report.machine.cpus, model: report.machine.model ?? 'cpu', seconds: report.seconds }, sections, checks);
  writeFileSync(join(RESULTS, `${runId}.md`), `${markdown}\n`);
  process.stdout.write(`\n${(report.seconds).toFixed(1)} s · figures in bench/results/${runId}.json (and latest.json), as Markdown in ${runId}.md\n`);
  if (args.readme) {
    if (sections.some((s) => s.error) || interrupted()) throw new BenchError('--readme: the run did not complete, so the README keeps its table');
    asBenchError(() => writeIntoReadme(readme, markdown));
    process.stdout.write('README.md: the Performance table is now this run\'s\n');
  }
  if (sections.some((s) => s.error) && !interrupted()) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  if (!(err instanceof BenchError)) throw err;
  process.stderr.write(`bench: ${err.message}\n`);
  process.exitCode = 2;
}
