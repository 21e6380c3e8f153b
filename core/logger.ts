import { pino, type Logger } from 'pino';
import type { Redactor } from './redactor.ts';

/** JSON lines on stdout; every string that holds a configured secret is redacted before it is written. */
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
    (options.destination as pino.DestinationStream | undefined) ?? pino.destination({ sync: false }),
  );
}
