/**
 * Dead-letter topics: `<topic>.dlq` holds the original key and value verbatim, the original headers,
 * and these headers saying why. Both adapters write them the same way.
 */
export const DLQ_SUFFIX = '.dlq';

export const DLQ_HEADERS = {
  /** `schema` (the value failed its topic's schema; not retried) or `handler` (retries ran out). */
  reason: 'x-dlq-reason',
  error: 'x-dlq-error',
  errorName: 'x-dlq-error-name',
  topic: 'x-dlq-topic',
  partition: 'x-dlq-partition',
  offset: 'x-dlq-offset',
  group: 'x-dlq-group',
  attempts: 'x-dlq-attempts',
  at: 'x-dlq-at',
} as const;

export type DeadLetterReason = 'schema' | 'handler';

/** The header that names a message for deduplication; dead letters keep the original's id. */
export const MESSAGE_ID_HEADER = 'message-id';

export const dlqTopicOf = <T extends string>(topic: T) => `${topic}${DLQ_SUFFIX}` as `${T}.dlq`;
export const isDlqTopic = (topic: string) => topic.endsWith(DLQ_SUFFIX);

/** Error text is capped: a header is no place for a megabyte of stack. */
export function describeError(err: unknown, max = 2000): { name: string; message: string } {
  const name = err instanceof Error ? err.name : typeof err;
  const message = err instanceof Error ? err.message : String(err);
  return { name, message: message.length > max ? `${message.slice(0, max)}…` : message };
}
