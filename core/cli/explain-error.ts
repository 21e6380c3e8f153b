import { HubError } from '../errors.ts';

/**
 * One sentence for an error that reached the top of the command line. The
 * hub's own errors already say what to do; Redis's and the system's are named
 * for what they are; anything else is a bug. A stack trace only when asked
 * for (`HUB_DEBUG=1`): an operator needs the sentence, a bug report the stack.
 */
export function explain(err: unknown, debug: string | undefined): string {
  const error = err instanceof Error ? err : new Error(String(err));
  const sentence = sentenceOf(error);
  return debug && !(error instanceof HubError) ? `${sentence}\n${error.stack}` : sentence;
}

function sentenceOf(err: Error & { code?: unknown; syscall?: unknown }): string {
  if (err instanceof HubError) return err.message;
  if (err.name === 'ReplyError') return `Redis refused a command (${err.message}); if what you typed was right, this is a bug: run again with HUB_DEBUG=1 and report what it prints`;
  if (err.name === 'MaxRetriesPerRequestError' || err.message === 'Connection is closed.') {
    return 'lost the connection to Redis before the command finished; check that Redis is running, then run the command again';
  }
  // A system call's own message names the call, the path and the reason: "EACCES: permission denied, open '/etc/hub/mapping.json'".
  if (typeof err.code === 'string' && typeof err.syscall === 'string') return err.message;
  return `unexpected error: ${err.message}; this is a bug: run again with HUB_DEBUG=1 and report what it prints`;
}
