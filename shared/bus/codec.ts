/**
 * The one place bus values are serialised: JSON text checked against a zod schema per topic, on
 * publish (a producer bug fails loudly at its source) and on consume (a value from an older or
 * foreign producer that fails goes to the dead-letter topic with the reason).
 * Dead-letter topics carry the original text verbatim and are never parsed.
 */
import type { z } from 'zod';
import type { TopicMap } from '../ports/bus.ts';
import { isDlqTopic } from './dlq.ts';

/** A value does not fit its topic (or the topic has no schema); `reason` says where and why. */
export class BusSchemaError extends Error {
  override readonly name = 'BusSchemaError';
  constructor(readonly topic: string, readonly reason: string, options?: ErrorOptions) {
    super(`${topic}: ${reason}`, options);
  }
}

/**
 * A topic name, or a pattern for a family of topics (`/^crm\.public\.[a-z_]+$/`), and its schema.
 * `check` is an optional fast path for hot topics: a hand-written test that returns true only for
 * values the schema accepts. When it returns true the schema is not run (and a decoded value is the
 * parsed JSON as it is, unknown keys included); when false, the schema decides and explains.
 */
export interface TopicRoute { topic: string | RegExp; schema: z.ZodTypeAny; check?: (value: unknown) => boolean }

/** Encodes and decodes values; `M` is the topic map the routes describe (types only). */
export interface BusCodec<M extends TopicMap = TopicMap> {
  /** Phantom: carries `M` to the bus factories. Never set. */
  readonly __topics?: M;
  knows(topic: string): boolean;
  /** Checks `value` against the topic's schema and returns its JSON text. */
  encode(topic: string, value: unknown): string;
  /** Parses and checks JSON text; dead-letter topics return the text itself. */
  decode(topic: string, text: string): unknown;
}

function explain(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(value)'}: ${i.message}`)
    .join('; ');
}

/** Builds a codec from routes; the first route whose topic matches wins. */
export function defineCodec<M extends TopicMap>(routes: readonly TopicRoute[]): BusCodec<M> {
  const exact = new Map<string, TopicRoute>();
  const patterns: { re: RegExp; route: TopicRoute }[] = [];
  for (const r of routes) {
    if (typeof r.topic === 'string') {
      if (!exact.has(r.topic)) exact.set(r.topic, r);
    } else patterns.push({ re: r.topic, route: r });
  }
  const routeOf = (topic: string) => exact.get(topic) ?? patterns.find((p) => p.re.test(topic))?.route;
  const require = (topic: string) => {
    const route = routeOf(topic);
    if (!route) throw new BusSchemaError(topic, 'no schema is defined for this topic');
    return route;
  };
  return {
    knows: (topic) => isDlqTopic(topic) || routeOf(topic) !== undefined,
    encode(topic, value) {
      if (isDlqTopic(topic)) {
        if (typeof value !== 'string') throw new BusSchemaError(topic, 'dead-letter values are the original text');
        return value;
      }
      const route = require(topic);
      if (!route.check?.(value)) {
        const result = route.schema.safeParse(value);
        if (!result.success) throw new BusSchemaError(topic, explain(result.error), { cause: result.error });
      }
      // The caller's value, not zod's output: unknown keys survive and the text is what was meant.
      return JSON.stringify(value);
    },
    decode(topic, text) {
      if (isDlqTopic(topic)) return text;
      const route = require(topic);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new BusSchemaError(topic, `not JSON: ${(err as Error).message}`, { cause: err });
      }
      if (route.check?.(json)) return json;
      const result = route.schema.safeParse(json);
      if (!result.success) throw new BusSchemaError(topic, explain(result.error), { cause: result.error });
      return result.data;
    },
  };
}
