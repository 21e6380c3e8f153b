/**
 * A signal for one call: aborted when any of `signals` is, or when `timeout`
 * runs out; `release()` unhooks it from them and clears the timer.
 *
 * What `AbortSignal.any` and `AbortSignal.timeout` do, minus what outlives the
 * call: `timeout` keeps its timer for the whole timeout (a matrix worker syncs
 * once per send: tens of thousands of 30 s timers), and `any` registers its
 * signal with each source by a weak reference, which V8 keeps through every
 * minor collection until a full one, with all the signal reaches.
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
