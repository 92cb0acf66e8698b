/** Dependency health: every check runs in parallel with a timeout. */
export interface DependencyStatus { ok: boolean; latencyMs: number; error?: string }
export interface HealthReport { status: 'ok' | 'unavailable'; dependencies: Record<string, DependencyStatus> }

export type HealthChecks = Record<string, () => Promise<unknown>>;

export async function checkHealth(checks: HealthChecks, timeoutMs = 2000): Promise<HealthReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, DependencyStatus]> => {
      const started = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          check(),
          new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs); }),
        ]);
        return [name, { ok: true, latencyMs: Math.round(performance.now() - started) }];
      } catch (err) {
        const message = err instanceof Error ? err.message || err.name : String(err);
        return [name, { ok: false, latencyMs: Math.round(performance.now() - started), error: message.slice(0, 300) }];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const dependencies = Object.fromEntries(entries);
  return { status: entries.every(([, s]) => s.ok) ? 'ok' : 'unavailable', dependencies };
}
