/** Memory and CPU time of a process, from /proc (Linux). */
import { readFileSync } from 'node:fs';

export interface MemoryStatus {
  /** Resident set now, MB. */
  rssMb: number;
  /** Peak resident set ("high water mark"), MB. */
  hwmMb: number;
  /**
   * Anonymous resident memory now, MB: the process's own (heap, code it
   * compiled, buffers). The rest of its RSS is mostly file pages of the Node
   * binary, shared by every Node process on the machine.
   */
  anonMb: number;
}

export function memoryOf(pid: number): MemoryStatus | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024, anonMb: kb('RssAnon') / 1024 };
  } catch {
    return undefined;
  }
}

const TICKS_PER_SECOND = 100;

/** User + system CPU time the process has used, in seconds. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at state (field 3).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** CPU time of the Redis server (local only), from its INFO. */
export function parseRedisCpu(info: string): number {
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? Number.NaN);
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? Number.NaN);
  return sys + user;
}

/** Calls and CPU µs per command since Redis started (INFO commandstats): diff two to see what a run made Redis do. */
export function parseCommandStats(info: string): Map<string, { calls: number; usec: number }> {
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) stats.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  return stats;
}

export function commandStatsSince(before: Map<string, { calls: number; usec: number }>, after: Map<string, { calls: number; usec: number }>): Map<string, { calls: number; usec: number }> {
  const diff = new Map<string, { calls: number; usec: number }>();
  for (const [command, now] of after) {
    const then = before.get(command) ?? { calls: 0, usec: 0 };
    if (now.calls > then.calls) diff.set(command, { calls: now.calls - then.calls, usec: now.usec - then.usec });
  }
  return diff;
}

/** Samples VmRSS of some processes every `everyMs`, keeping the largest seen (VmHWM is read as well at the end), and the largest RssAnon. */
export class RssSampler {
  #timer: NodeJS.Timeout | undefined;
  readonly peaks = new Map<number, number>();
  readonly anonPeaks = new Map<number, number>();
  #pids: () => number[];

  constructor(pids: () => number[], everyMs = 100) {
    this.#pids = pids;
    this.#timer = setInterval(() => this.sample(), everyMs).unref();
  }

  sample(): void {
    for (const pid of this.#pids()) {
      const m = memoryOf(pid);
      if (!m) continue;
      this.peaks.set(pid, Math.max(this.peaks.get(pid) ?? 0, m.rssMb, m.hwmMb));
      this.anonPeaks.set(pid, Math.max(this.anonPeaks.get(pid) ?? 0, m.anonMb));
    }
  }

  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }
}

/** CPU seconds the whole machine has been busy (all cores, from /proc/stat). */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [, user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    void idle;
    void iowait;
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}
