/**
 * The platform's topics and their value schemas. infra/kafka/topics.json lists the same topics with
 * their production partition counts and retention (a test keeps the two in step).
 *
 * - `crm.public.<table>`: change events from the CRM database, Debezium-shaped, keyed by the row's
 *   primary key (its text form; a composite key as a JSON array), one topic per table. With regions,
 *   each region's CRM has its own family, `crm_<region>.public.<table>` (Debezium's `topic.prefix`).
 * - `profile.commands`, `deals.commands`, `notification.commands`: the order saga's commands to its
 *   participants; `saga.events`: their replies to the orchestrator. Keyed by `sagaId` so one saga's
 *   messages stay in order; published with a `message-id` header equal to `messageId`.
 */
import { z } from 'zod';
import type { TopicSpec } from '../ports/bus.ts';
import { defineCodec, type BusCodec } from './codec.ts';

const row = z.record(z.unknown());

/** Debezium's change-event envelope (the `payload` part; the schema part is not sent). */
export const cdcEnvelopeSchema = z
  .object({
    before: row.nullable(),
    after: row.nullable(),
    /** create, update, delete, read (snapshot), truncate */
    op: z.enum(['c', 'u', 'd', 'r', 't']),
    source: z.object({
      /** Commit LSN of the transaction as a decimal string (64-bit); ClickHouse's `_version`. */
      lsn: z.string().regex(/^\d+$/, 'must be a decimal LSN'),
      txId: z.number().int().nonnegative(),
      db: z.string().optional(),
      schema: z.string().min(1),
      table: z.string().min(1),
      /** Commit time in the source database. */
      ts_ms: z.number().int(),
      snapshot: z.enum(['true', 'last', 'false']).optional(),
    }),
    /** When the change was captured. */
    ts_ms: z.number().int(),
  })
  .superRefine((e, ctx) => {
    const need = (field: 'before' | 'after', present: boolean) => {
      if ((e[field] !== null) !== present) {
        ctx.addIssue({ code: 'custom', path: [field], message: `must be ${present ? 'a row' : 'null'} when op is '${e.op}'` });
      }
    };
    if (e.op === 'c' || e.op === 'r') { need('before', false); need('after', true); }
    if (e.op === 'u') need('after', true);
    if (e.op === 'd') { need('before', true); need('after', false); }
    if (e.op === 't') { need('before', false); need('after', false); }
  });
export type CdcEnvelope = z.infer<typeof cdcEnvelopeSchema>;

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isName = (v: unknown) => typeof v === 'string' && v.length > 0;
const DECIMAL = /^\d+$/;
const OPS = new Set(['c', 'u', 'd', 'r', 't']);
const SNAPSHOT = new Set(['true', 'last', 'false']);

/**
 * {@link cdcEnvelopeSchema} by hand, for the codec's fast path: every change event is checked on
 * publish and on consume, and zod costs ~12 µs per envelope where this costs well under one. True
 * only for values the schema accepts (a test holds the two together); anything else goes to zod.
 */
export function isCdcEnvelope(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  const { before, after, op, source: s } = v;
  if (!(before === null || isPlainObject(before)) || !(after === null || isPlainObject(after))) return false;
  if (typeof op !== 'string' || !OPS.has(op) || !isInt(v.ts_ms) || !isPlainObject(s)) return false;
  if (typeof s.lsn !== 'string' || !DECIMAL.test(s.lsn) || !isInt(s.txId) || s.txId < 0 || !isInt(s.ts_ms)) return false;
  if (!isName(s.schema) || !isName(s.table) || !(s.db === undefined || typeof s.db === 'string')) return false;
  if (!(s.snapshot === undefined || (typeof s.snapshot === 'string' && SNAPSHOT.has(s.snapshot)))) return false;
  switch (op) {
    case 'c': case 'r': return before === null && after !== null;
    case 'u': return after !== null;
    case 'd': return before !== null && after === null;
    default: return before === null && after === null;
  }
}

/** Commands and events of the order saga share one envelope. */
export const sagaMessageSchema = z.object({
  /** Unique per message; handlers dedupe on it. */
  messageId: z.string().min(1).max(200),
  sagaId: z.string().min(1).max(200),
  /** e.g. `APPROVE_ORDER`, `ORDER_APPROVED` (the saga's transition table names them). */
  type: z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'must be UPPER_SNAKE_CASE'),
  payload: z.record(z.unknown()),
  /** Epoch milliseconds at the producer. */
  ts: z.number().int().nonnegative(),
  /** The message this one answers, when it answers one. */
  causationId: z.string().min(1).optional(),
});
export type SagaCommand = z.infer<typeof sagaMessageSchema>;
export type SagaEvent = SagaCommand;

/** A CDC topic: `<prefix>.public.<table>`, the prefix `crm` or a region's `crm_<region>`. */
export type CdcTopic = `crm${string}.public.${string}`;

// The optional part is a region id (shared/regions REGION_ID).
export const CDC_TOPIC_PATTERN = /^crm(?:_[a-z][a-z0-9]{1,15})?\.public\.[a-z_][a-z0-9_]*$/;

/** Debezium's `topic.prefix` of a region's CRM: `crm_<region>`; `crm` without regions (the implicit one). */
export const cdcTopicPrefix = (region: string | null): string => (region ? `crm_${region}` : 'crm');

/** The topic of a CRM table's change events, under `prefix` ({@link cdcTopicPrefix}). */
export const cdcTopic = (table: string, prefix = 'crm'): CdcTopic => `${prefix}.public.${table}` as CdcTopic;

/**
 * A region's CDC topics as configured for the central family: each `crm.public.<table>` spec (and
 * its dead-letter topic) again under `prefix`, with the same partitions and retention. So a region
 * added by configuration gets production-shaped topics without editing infra/kafka/topics.json.
 */
export function cdcTopicSpecsFor(specs: readonly TopicSpec[], prefix: string): TopicSpec[] {
  const central = 'crm.public.';
  return specs.filter((s) => s.name.startsWith(central)).map((s) => ({ ...s, name: `${prefix}.public.${s.name.slice(central.length)}` }));
}

export const SAGA_TOPICS = {
  profileCommands: 'profile.commands',
  dealsCommands: 'deals.commands',
  notificationCommands: 'notification.commands',
  events: 'saga.events',
} as const;

/** Value type of every platform topic. */
export type BionicTopics = {
  [topic: CdcTopic]: CdcEnvelope;
  'profile.commands': SagaCommand;
  'deals.commands': SagaCommand;
  'notification.commands': SagaCommand;
  'saga.events': SagaEvent;
};

/** The platform's codec: pass it to `createBus`. */
export const bionicCodec: BusCodec<BionicTopics> = defineCodec<BionicTopics>([
  { topic: CDC_TOPIC_PATTERN, schema: cdcEnvelopeSchema, check: isCdcEnvelope },
  ...Object.values(SAGA_TOPICS).map((topic) => ({ topic, schema: sagaMessageSchema })),
]);
