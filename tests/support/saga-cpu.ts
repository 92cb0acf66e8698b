/**
 * CPU time per process from /proc (Linux), for the saga benchmark's "where the time goes" table:
 * the saga worker process, PostgreSQL (the postmaster and every backend, including backends that
 * exited meanwhile — the postmaster's reaped-children time), and whatever else the caller names.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_S = 100; // USER_HZ; 100 on every Linux the project targets

/** utime, stime, cutime, cstime of `pid` in ticks; null when it is gone. */
function times(pid: number): [number, number, number, number] | null {
  try {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(f[11]), Number(f[12]), Number(f[13]), Number(f[14])];
  } catch {
    return null;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch { /* exited while listing */ }
  }
  return out;
}

/** CPU seconds `pid` has used so far (its own, not its children's). */
export function processCpuS(pid: number): number {
  const t = times(pid);
  return t ? (t[0] + t[1]) / TICKS_PER_S : 0;
}

/** CPU seconds of `pid` and all of its children, live and reaped (PostgreSQL: the postmaster). */
export function treeCpuS(pid: number): number {
  const own = times(pid);
  if (!own) return 0;
  let ticks = own[0] + own[1] + own[2] + own[3];
  for (const child of childrenOf(pid)) {
    const t = times(child);
    if (t) ticks += t[0] + t[1];
  }
  return ticks / TICKS_PER_S;
}

/** The postmaster's pid, found from one backend of it. */
export function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Snapshots of named CPU counters; `since(before)` gives seconds used per name in between. */
export function cpuMeter(sources: Record<string, () => number>) {
  const read = () => Object.fromEntries(Object.entries(sources).map(([k, f]) => [k, f()]));
  return {
    read,
    since(before: Record<string, number>): Record<string, number> {
      const now = read();
      return Object.fromEntries(Object.keys(sources).map((k) => [k, now[k]! - before[k]!]));
    },
  };
}

/** CPU seconds the whole machine has spent busy (all processes, all cores), from /proc/stat. */
export function machineBusyS(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: everything but idle and iowait is busy.
  return (cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]! + (cpu[7] ?? 0)) / TICKS_PER_S;
}
