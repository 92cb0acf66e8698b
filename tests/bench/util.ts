/** Shared benchmark helpers (not a benchmark itself: tests/bench/run.ts skips this file). */

export interface LoadResult { rps: number; p50: number; p99: number; errors: number }

/**
 * Closed-loop HTTP load on loopback: `connections` callers, each sending its next GET when the
 * last one answered, for `seconds`. Bounded in time; non-200 answers count as errors.
 */
export async function closedLoopLoad(url: string, opts: { connections: number; seconds: number; headers?: Record<string, string> }): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + opts.seconds * 1000;
  await Promise.all(Array.from({ length: opts.connections }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const res = await fetch(url, { headers: opts.headers });
      await res.arrayBuffer();
      if (res.status !== 200) errors += 1;
      latencies.push(performance.now() - t0);
    }
  }));
  latencies.sort((a, b) => a - b);
  const q = (f: number) => latencies[Math.min(latencies.length - 1, Math.floor(f * latencies.length))] ?? NaN;
  return { rps: latencies.length / opts.seconds, p50: q(0.5), p99: q(0.99), errors };
}
