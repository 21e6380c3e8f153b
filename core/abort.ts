/**
 * A signal for one call: aborted when any of `signals` is, or when `timeout`
 * runs out; `release()` unhooks it from them and clears the timer.
 *
 * What `AbortSignal.any` and `AbortSignal.timeout` do, minus what outlives the
 * call: `any` registers its signal with each source by a weak reference, and
 * V8 keeps weakly referenced objects through every minor collection until a
 * full one, with all they reach (the request's listeners and buffers); at a
 * call per message, against a source that lives as long as the process, that
 * was most of what a matrix worker promoted to its old generation.
 */
export interface CallSignal {
  signal: AbortSignal;
  release(): void;
}

export function callSignal(signals: AbortSignal[], timeout?: { ms: number; reason: () => unknown }): CallSignal {
  const controller = new AbortController();
  const aborted = signals.find((s) => s.aborted);
  if (aborted) {
    controller.abort(aborted.reason);
    return { signal: controller.signal, release: () => {} };
  }
  const hooks = signals.map((source) => {
    const onAbort = () => controller.abort(source.reason);
    source.addEventListener('abort', onAbort, { once: true });
    return () => source.removeEventListener('abort', onAbort);
  });
  const timer = timeout ? setTimeout(() => controller.abort(timeout.reason()), timeout.ms) : undefined;
  return {
    signal: controller.signal,
    release() {
      clearTimeout(timer);
      for (const unhook of hooks) unhook();
    },
  };
}
