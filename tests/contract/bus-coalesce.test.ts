/**
 * The PostgreSQL log's merged statements (workers/bus/pg-coalesce.ts) against a real server: a merged
 * fetch returns exactly what fetching each partition alone returns, merged offset commits each take
 * effect, and one commit that cannot succeed neither loses nor wrongly advances another's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coalescer } from '../../workers/bus/pg-coalesce.ts';
import { execOf, PgLog, type Commit, type FetchRequest, type TopicInfo } from '../../workers/bus/pg-log.ts';
import { GroupSession } from '../../workers/bus/pg-session.ts';
import { startPlatformDb, type PlatformDb } from '../support/platform-db.ts';
import { newGroup, newTopic } from './bus-support.ts';

type Offset = Omit<Commit, 'deadLetters' | 'dlqTopic'>;
let db: PlatformDb;
let log: PgLog;

beforeAll(async () => {
  db = await startPlatformDb('bus-coalesce');
  log = new PgLog(db.sql, 4);
}, 120_000);
afterAll(async () => { await db?.stop(); }, 60_000);

/** What one partition's fetch on its own must return, read with a plain query. */
async function alone(r: FetchRequest) {
  const rows = await db.sql`SELECT msg_offset::text AS offset, key, value, headers FROM bus_messages
    WHERE topic_id = ${r.topic.id} AND partition = ${r.partition} AND msg_offset >= ${r.from} ORDER BY msg_offset LIMIT ${r.limit}`;
  return rows.map((m) => ({ topic: r.topic.name, partition: r.partition, offset: m.offset, key: m.key, value: m.value, headers: m.headers ?? {} }));
}

/** Offset commits through a coalescer on `session`, as a consumer makes them, counting statements. */
function committer(session: GroupSession) {
  const statements: number[] = [];
  const c = new Coalescer((commits: Offset[]) => session.run((exec) => {
    statements.push(commits.length);
    return log.commitOffsets(exec, commits);
  }));
  return { statements, commit: (o: Offset) => c.call(o) };
}

const committed = async (group: number) => Object.fromEntries((await db.sql`SELECT topic_id, partition, next_offset::int AS next
  FROM bus_offsets WHERE group_id = ${group}`).map((r) => [`${r.topic_id}:${r.partition}`, r.next]));

describe('merged fetches', () => {
  it('return, per request, exactly what fetching that partition alone returns', async () => {
    const topics: TopicInfo[] = [];
    for (const name of [newTopic('fetch-a'), newTopic('fetch-b')]) {
      const topic = await log.topic(name);
      topics.push(topic);
      // Uneven partitions, some headers, one partition left empty (keys chosen to land anywhere).
      const messages = Array.from({ length: 90 }, (_, i) => ({
        key: `k${i % 23}`, value: JSON.stringify({ seq: i, text: 'tab\there ü' }), headers: i % 4 ? { 'message-id': `${name}-${i}` } : undefined,
      }));
      await log.append(execOf(db.sql), topic, messages);
    }
    const [a, b] = topics as [TopicInfo, TopicInfo];
    const requests: FetchRequest[] = [
      { topic: a, partition: 0, from: 0, limit: 1000 },
      { topic: b, partition: 0, from: 3, limit: 5 },
      { topic: a, partition: 1, from: 2, limit: 1 },
      { topic: b, partition: 2, from: 1_000_000, limit: 10 }, // beyond the end: nothing
      { topic: a, partition: 3, from: 0, limit: 7 },
      { topic: a, partition: 0, from: 5, limit: 3 }, // the same partition twice, another range
      { topic: b, partition: 3, from: 0, limit: 1000 },
    ];
    const merged = await log.fetch(requests);
    expect(merged).toHaveLength(requests.length);
    for (const [i, r] of requests.entries()) {
      const expected = await alone(r);
      expect(merged[i]!.map(({ topic, partition, offset, key, value, headers }) => ({ topic, partition, offset, key, value, headers })), `request ${i}`).toEqual(expected);
      expect((await log.fetch([r]))[0]).toEqual(merged[i]);
      for (const m of merged[i]!) expect(m.id).toBe(m.headers['message-id'] ?? `${r.topic.name}/${r.partition}/${m.offset}`);
    }
    expect(merged.map((m) => m.length).reduce((s, n) => s + n)).toBeGreaterThan(30);
  });
});

describe('merged offset commits', () => {
  let topic: TopicInfo;
  let group: number;
  let session: GroupSession;
  beforeAll(async () => {
    topic = await log.topic(newTopic('commit'));
    group = await log.group(newGroup('commit'));
    session = await GroupSession.open(db.url, group);
  });
  afterAll(async () => { await session?.close(); });

  it('each take effect, in one statement, and a later merge moves them on', async () => {
    const c = committer(session);
    const at = (partition: number, next: number) => ({ group, topic, partition, pid: session.pid, next });
    expect(await Promise.all([0, 1, 2, 3].map((p) => c.commit(at(p, 10 + p))))).toEqual([true, true, true, true]);
    expect(c.statements).toEqual([4]);
    expect(await committed(group)).toEqual({ [`${topic.id}:0`]: 10, [`${topic.id}:1`]: 11, [`${topic.id}:2`]: 12, [`${topic.id}:3`]: 13 });
    await Promise.all([c.commit(at(1, 20)), c.commit(at(3, 30))]);
    expect(c.statements).toEqual([4, 2]);
    expect(await committed(group)).toMatchObject({ [`${topic.id}:0`]: 10, [`${topic.id}:1`]: 20, [`${topic.id}:2`]: 12, [`${topic.id}:3`]: 30 });
  });

  it('one commit that fails does not lose or wrongly advance the others merged with it', async () => {
    const c = committer(session);
    const missing = { ...topic, id: 2_000_000_000, name: 'no.such.topic' }; // violates bus_offsets' foreign key
    const results = await Promise.allSettled([
      c.commit({ group, topic, partition: 0, pid: session.pid, next: 40 }),
      c.commit({ group, topic: missing, partition: 0, pid: session.pid, next: 99 }),
      c.commit({ group, topic, partition: 2, pid: session.pid, next: 42 }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(c.statements).toEqual([3, 1, 1, 1]); // the merge failed whole, then each went alone
    expect(await committed(group)).toEqual({ [`${topic.id}:0`]: 40, [`${topic.id}:1`]: 20, [`${topic.id}:2`]: 42, [`${topic.id}:3`]: 30 });
  });

  it('commit nothing on a session that is no longer the owner', async () => {
    const c = committer(session);
    const stale = { group, topic, pid: session.pid + 1_000_000 }; // as if the owner's connection was replaced
    expect(await Promise.all([c.commit({ ...stale, partition: 0, next: 50 }), c.commit({ ...stale, partition: 1, next: 51 })])).toEqual([false, false]);
    expect(c.statements).toEqual([2]);
    expect(await committed(group)).toMatchObject({ [`${topic.id}:0`]: 40, [`${topic.id}:1`]: 20 });
  });
});
