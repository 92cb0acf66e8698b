/**
 * Typed client factory for `@trpc/client`. Subscriptions go over SSE; queries and mutations are
 * batched and streamed, with worker-served paths split into their own batches so the edge can
 * forward them whole (and so a server-side caller can send them straight to a worker URL).
 */
import { createTRPCClient, httpBatchStreamLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import superjson from 'superjson';
import { isWorkerPath } from './paths.ts';
import type { AppRouter } from './root.ts';

export interface BionicClientOptions {
  /** The edge's tRPC endpoint, e.g. `https://bionic.example/trpc`. */
  url: string;
  /** Where worker-served procedures go; defaults to `url` (the edge forwards them). */
  workerUrl?: string;
  headers?: () => Record<string, string> | Promise<Record<string, string>>;
  fetch?: typeof fetch;
}

/** Creates a typed client for the whole AppRouter. */
export function createBionicClient(opts: BionicClientOptions) {
  const common = { transformer: superjson, headers: opts.headers ?? (() => ({})), fetch: opts.fetch };
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
