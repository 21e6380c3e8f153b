/**
 * A preload (`NODE_OPTIONS=--import <this file>`) that gives a process a wall
 * clock of its own, as a machine whose clock is set wrong or steps (an NTP
 * correction, an operator, a VM resumed): `Date.now()` and `new Date()` are
 * shifted by `CLOCK_OFFSET_MS` from the start, and step by `CLOCK_STEP_MS`
 * (default −1 h) at every SIGUSR2. The monotonic clock (`performance.now()`,
 * timers) is left alone, as a real clock step leaves it.
 */
const RealDate = Date;
let offset = Number(process.env.CLOCK_OFFSET_MS ?? 0);

process.on('SIGUSR2', () => {
  offset += Number(process.env.CLOCK_STEP_MS ?? -3_600_000);
  process.stdout.write(`${JSON.stringify({ msg: 'wall clock stepped', offsetMs: offset })}\n`);
});

// A function rather than a subclass, so that `Date()` without `new` still works; `instanceof Date` holds (one prototype).
function ShiftedDate(this: unknown, ...args: unknown[]): Date | string {
  const now = () => new RealDate(RealDate.now() + offset);
  if (!new.target) return now().toString();
  return args.length === 0 ? now() : new (RealDate as new (...a: unknown[]) => Date)(...args);
}
ShiftedDate.prototype = RealDate.prototype;
ShiftedDate.now = () => RealDate.now() + offset;
ShiftedDate.parse = RealDate.parse;
ShiftedDate.UTC = RealDate.UTC;

globalThis.Date = ShiftedDate as unknown as DateConstructor;
