/**
 * A consumer's membership in its group, on a connection of its own. Membership and partition
 * ownership are session advisory locks, so PostgreSQL itself releases them when the process dies or
 * its connection drops, and another member takes over at its next rebalance.
 *
 * Lock keys (two int4): members `(2·group, member)`, partitions `(2·group+1, 4096·topic + partition)`.
 * Members are listed from `pg_locks`. Every write that depends on ownership carries this session's
 * backend pid and checks it (`pg_backend_pid() = pid`): postgres.js silently reconnects a dropped
 * connection, and a statement on the new session must not act as the owner.
 */
import postgres from 'postgres';
import { BusError } from './consume.ts';
import { execOf, type Exec } from './pg-log.ts';
import { BUS_CONNECTION } from './pg-statements.ts';

const memberKey = (group: number) => 2 * group;
const partitionKeys = (group: number, topicId: number, partition: number) => [2 * group + 1, topicId * 4096 + partition];

/** Live members of a group, ascending (any connection may ask). */
export async function groupMembers(sql: postgres.Sql, group: number): Promise<number[]> {
  const rows = await sql`SELECT objid::bigint AS member FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND classid = ${memberKey(group)}::int::oid
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY 1`;
  return rows.map((r) => Number(r.member));
}

export class GroupSession {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly client: postgres.Sql,
    private readonly state: { lost: boolean },
    readonly group: number,
    readonly member: number,
    readonly pid: number,
  ) {}

  /** Connects and joins `group` under a fresh member number. */
  static async open(url: string, group: number, applicationName = 'bionicpro-bus'): Promise<GroupSession> {
    const state = { lost: false };
    const client = postgres(url, {
      max: 1, max_lifetime: null, idle_timeout: 0, onnotice: () => {},
      // Offsets and dead letters may commit asynchronously: a crash can lose only the latest such
      // transactions, whole, so their messages are redelivered (and dead-lettered again) — the
      // at-least-once contract — while a consumer skips one WAL flush per batch.
      connection: { ...BUS_CONNECTION, application_name: applicationName, synchronous_commit: 'off' },
      onclose: () => { state.lost = true; },
    });
    try {
      const [who] = await client<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      for (let i = 0; i < 8; i++) {
        const member = 1 + Math.floor(Math.random() * 0x7ffffffe);
        const [row] = await client`SELECT pg_try_advisory_lock(${memberKey(group)}::int, ${member}::int) AS ok WHERE pg_backend_pid() = ${who!.pid}`;
        if (!row || state.lost) throw new BusError('the consumer session dropped while joining');
        if (row.ok) return new GroupSession(client, state, group, member, who!.pid);
      }
      throw new BusError('no free member number after 8 tries');
    } catch (err) {
      await client.end({ timeout: 0 });
      throw err;
    }
  }

  /** True once the connection dropped: every lock is gone and the session must be replaced. */
  get lost(): boolean {
    return this.state.lost;
  }

  /** Runs `fn` on the session's connection, one at a time. */
  run<T>(fn: (exec: Exec) => Promise<T>): Promise<T> {
    const next = this.chain.then(() => {
      if (this.state.lost) throw new BusError('the consumer session has ended');
      return fn(execOf(this.client));
    });
    this.chain = next.catch(() => {});
    return next;
  }

  async tryLock(topicId: number, partition: number): Promise<boolean> {
    const [k1, k2] = partitionKeys(this.group, topicId, partition);
    const rows = await this.run((exec) => exec('SELECT pg_try_advisory_lock($1::int, $2::int) AS ok WHERE pg_backend_pid() = $3', [k1, k2, this.pid]));
    if (!rows[0]) this.state.lost = true;
    return rows[0]?.ok === true;
  }

  async unlock(topicId: number, partition: number): Promise<void> {
    const [k1, k2] = partitionKeys(this.group, topicId, partition);
    await this.run((exec) => exec('SELECT pg_advisory_unlock($1::int, $2::int) WHERE pg_backend_pid() = $3', [k1, k2, this.pid]));
  }

  /** Leaves the group: closing the connection releases every lock the session holds. */
  async close(): Promise<void> {
    this.state.lost = true;
    await this.chain;
    await this.client.end({ timeout: 5 });
  }
}
