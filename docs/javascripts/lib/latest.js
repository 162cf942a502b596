// The newest request wins: how every widget reruns its graph while the reader
// keeps changing its input.

/**
 * Wrap an async job so that calls while it runs collapse into one more run
 * afterwards: a drag that moves faster than the graph runs only ever waits
 * for the newest state. Returns a function that resolves when the state it
 * was called for has been drawn (and rejects if a run throws); its `running`
 * property is true from the first run until the last one has finished.
 */
export function latest(job) {
  let running = null;
  let again = false;
  const loop = async () => {
    try {
      do {
        again = false;
        await job();
      } while (again);
    } finally {
      running = null;
    }
  };
  const update = () => {
    if (running) {
      again = true;
      return running;
    }
    running = loop();
    return running;
  };
  Object.defineProperty(update, "running", { get: () => running !== null });
  return update;
}
