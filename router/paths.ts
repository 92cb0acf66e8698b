/**
 * Which host serves which procedure. The edge serves its own domains and forwards the worker
 * domains to the worker pool with the caller's bearer token; clients split batches by this rule.
 */
export const WORKER_DOMAINS = ['worker', 'orders', 'saga', 'etl', 'cdc', 'reportsBuilder', 'analytics'] as const;
export type WorkerDomain = (typeof WORKER_DOMAINS)[number];

/** True when a procedure path (e.g. `orders.create`) is served by the workers. */
export function isWorkerPath(path: string): boolean {
  const domain = path.split('.', 1)[0] ?? '';
  return (WORKER_DOMAINS as readonly string[]).includes(domain);
}

/**
 * Custom header the edge's CSRF guard requires on every state-changing request (with a same-origin
 * `Origin`); the typed client always sends it. Cross-site forms cannot set headers.
 */
export const CSRF_HEADER = 'x-bionic-csrf';
