/**
 * Typed client factory for `@trpc/client`. Subscriptions go over SSE; queries and mutations are
 * batched and streamed, with worker-served paths split into their own batches so the edge can
 * forward them whole (and so a server-side caller can send them straight to a worker URL).
 */
import { createTRPCClient, httpBatchStreamLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import superjson from 'superjson';
import { CSRF_HEADER, isWorkerPath } from './paths.ts';
import type { AppRouter } from './root.ts';

export interface BionicClientOptions {
  /** The edge's tRPC endpoint, e.g. `https://bionic.example/trpc`. */
  url: string;
  /** Where worker-served procedures go; defaults to `url` (the edge forwards them). */
  workerUrl?: string;
  /** Extra headers; the CSRF header the edge requires on mutations is always sent. */
  headers?: () => Record<string, string> | Promise<Record<string, string>>;
  fetch?: typeof fetch;
}

/** Creates a typed client for the whole AppRouter. */
export function createBionicClient(opts: BionicClientOptions) {
  // The edge refuses state-changing calls without this header (and a same-origin Origin).
  const headers = async () => ({ [CSRF_HEADER]: '1', ...(await opts.headers?.()) });
  const common = { transformer: superjson, headers, fetch: opts.fetch };
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url: opts.url, transformer: superjson }),
        false: splitLink({
          condition: (op) => isWorkerPath(op.path),
          true: httpBatchStreamLink({ ...common, url: opts.workerUrl ?? opts.url }),
          false: httpBatchStreamLink({ ...common, url: opts.url }),
        }),
      }),
    ],
  });
}

export type BionicClient = ReturnType<typeof createBionicClient>;
