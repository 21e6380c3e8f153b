import { pino, type Logger } from 'pino';
import type { Redactor } from './redactor.ts';

/**
 * JSON lines on stdout; every string that holds a configured secret is redacted before it is written.
 * Each line is written before the call returns (pino's default): an asynchronous write still in flight when the
 * process exits is lost, and the lost line was the last one, "stopped: …", or the reason of a crash.
 */
export function createLogger(options: { level: string; redactor: Redactor; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        streamWrite: (line) => options.redactor.redact(line),
      },
    },
    (options.destination as pino.DestinationStream | undefined) ?? pino.destination({ sync: true }),
  );
}
