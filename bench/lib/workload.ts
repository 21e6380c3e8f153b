/** The shape every workload returns, for the table and the JSON. */
import type { BenchContext } from './context.ts';

export interface Check {
  /** What the issue asks, in words: "delivery ≥ 60 % of the raw HTTP ceiling". */
  name: string;
  value: number;
  op: '>=' | '<=';
  target: number;
  unit: string;
  pass: boolean;
  /** What no code could beat on this machine, measured in the same run: where it misses the target too, the target is out of reach. */
  floor?: Floor;
}

export interface Floor {
  value: number;
  /** How it was measured, in words: "a bare Node process with ioredis connected". */
  what: string;
}

export interface WorkloadResult {
  /** Rows of the printed table: [figure, value]. */
  rows: Array<[string, string]>;
  /** Everything measured, for the JSON. */
  figures: Record<string, unknown>;
  checks: Check[];
}

export interface Workload {
  name: string;
  title: string;
  run(ctx: BenchContext): Promise<WorkloadResult>;
}

/** Whether `value` is on the target's side: a result, or the floor measured beside it. */
export function meets(op: Check['op'], value: number, target: number): boolean {
  return op === '>=' ? value >= target : value <= target;
}

export function check(name: string, value: number, op: '>=' | '<=', target: number, unit: string, floor?: Floor): Check {
  return { name, value, op, target, unit, pass: meets(op, value, target), ...(floor ? { floor } : {}) };
}

export const fmt = {
  rate: (v: number) => `${Math.round(v).toLocaleString('en-US')}/s`,
  ms: (v: number) => `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')} ms`,
  mb: (v: number) => `${v.toFixed(1)} MB`,
  pct: (v: number) => `${(v * 100).toFixed(1)} %`,
  lat: (s: { p50: number; p99: number; max: number }) => `p50 ${fmt.ms(s.p50)} · p99 ${fmt.ms(s.p99)} · max ${fmt.ms(s.max)}`,
};
