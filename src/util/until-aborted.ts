/**
 * `work`, or a rejection with `signal.reason` as soon as the signal aborts, whichever
 * comes first: for work that cannot be cancelled itself (a libvirt call, a connection
 * being opened) but must not hold up a command that was told to stop.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
