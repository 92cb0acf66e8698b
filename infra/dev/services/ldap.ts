/**
 * Debian's `slapd`, private to this stack: a generated slapd.conf (mdb backend), loopback only,
 * a free port, seeded once with the demo directory (ldap-directory.ts) by `slapadd`. Readiness is
 * slapd's own "slapd starting" line followed by a successful bind of the reader account.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'ldapts';
import { freePort } from '../free-port.ts';
import {
  demoLdif, LDAP_ADMIN_DN, LDAP_BASE_DN, LDAP_READER_DN, slapdConf, sshaHash, type DemoUser,
} from './ldap-directory.ts';
import type { RunningService } from './types.ts';

export const SLAPD_BINARY = '/usr/sbin/slapd';
const SLAPADD_BINARY = '/usr/sbin/slapadd';
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

export interface LdapService extends RunningService {
  readonly port: number;
  readonly baseDn: string;
  /** Read-only service account for the identity provider. */
  readonly bindDn: string;
  readonly bindPassword: string;
  /** The region this directory serves, when it is one region's directory. */
  readonly region?: string;
}

interface Secrets { adminPassword: string; readerPassword: string }

/** Per-data-dir secrets, generated once and kept owner-only beside the database. */
function secretsFor(dataDir: string): Secrets {
  const file = join(dataDir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Secrets;
  return { adminPassword: randomBytes(18).toString('base64url'), readerPassword: randomBytes(18).toString('base64url') };
}

/**
 * Starts slapd; seeds the demo directory on first start; resolves once the reader account can bind.
 * `region` + `users` make it one region's directory (service name `ldap-<region>`); by default it
 * holds every demo user.
 */
export async function startLdap(opts: {
  dataDir: string; port?: number; onLog?: (line: string) => void; region?: string; users?: readonly DemoUser[];
}): Promise<LdapService> {
  const port = opts.port ?? (await freePort());
  const dbDir = join(opts.dataDir, 'db');
  await mkdir(dbDir, { recursive: true });
  const secrets = secretsFor(opts.dataDir);
  await writeFile(join(opts.dataDir, 'secrets.json'), JSON.stringify(secrets), { mode: 0o600 });
  const confFile = join(opts.dataDir, 'slapd.conf');
  await writeFile(confFile, slapdConf({ dataDir: opts.dataDir, dbDir, adminPasswordHash: sshaHash(secrets.adminPassword) }), { mode: 0o600 });
  if (!existsSync(join(dbDir, 'data.mdb'))) {
    const ldif = join(opts.dataDir, 'seed.ldif');
    await writeFile(ldif, demoLdif({ readerPassword: secrets.readerPassword, users: opts.users }), { mode: 0o600 });
    try {
      await promisify(execFile)(SLAPADD_BINARY, ['-q', '-f', confFile, '-l', ldif]);
    } catch (err) {
      throw new Error(`seeding LDAP failed: ${(err as { stderr?: string }).stderr ?? err}`, { cause: err });
    }
  }

  // `-d 0x8000` keeps slapd in the foreground and prints only its must-see lines (start, errors).
  const url = `ldap://127.0.0.1:${port}`;
  const child = spawn(SLAPD_BINARY, ['-f', confFile, '-h', `${url}/`, '-d', '0x8000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  let partial = '';
  let markStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => { markStarted = resolve; });
  const onData = (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      output.push(line);
      if (output.length > 50) output.shift();
      opts.onLog?.(line);
      if (line.endsWith('slapd starting')) markStarted();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT'
      ? new Error(`${SLAPD_BINARY} was not found; install it with: apt-get install slapd ldap-utils`, { cause: err })
      : new Error(`could not start slapd: ${err.message}`, { cause: err })));
    void exited.then(({ code, signal }) => reject(new Error(
      `slapd on port ${port} exited during startup (code ${code}, signal ${signal}):\n${[...output, partial].join('\n').trim()}`)));
  });
  let timer: NodeJS.Timeout | undefined;
  const giveUp = new AbortController();
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`slapd on port ${port} was not ready after ${START_TIMEOUT_MS} ms:\n${output.join('\n')}`)), START_TIMEOUT_MS);
  });
  try {
    await Promise.race([started.then(() => bindWhenListening(url, LDAP_READER_DN, secrets.readerPassword, giveUp.signal)), failed, timedOut]);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
    giveUp.abort();
    failed.catch(() => {}); // settles by design once the service stops
  }

  return {
    name: opts.region ? `ldap-${opts.region}` : 'ldap',
    url,
    region: opts.region,
    pid: child.pid,
    port,
    exited,
    baseDn: LDAP_BASE_DN,
    bindDn: LDAP_READER_DN,
    bindPassword: secrets.readerPassword,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      try { await exited; } finally { clearTimeout(force); }
    },
  };
}

/** The directory administrator's credentials (for tools that modify the directory). */
export function ldapAdmin(dataDir: string): { dn: string; password: string } {
  return { dn: LDAP_ADMIN_DN, password: secretsFor(dataDir).adminPassword };
}

/**
 * slapd logs "slapd starting" just before its listener threads call listen(), so the first
 * connection can still be refused; the successful bind is the readiness event.
 */
async function bindWhenListening(url: string, dn: string, password: string, signal: AbortSignal): Promise<void> {
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      return await bindOnce(url, dn, password);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || signal.aborted) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

async function bindOnce(url: string, dn: string, password: string): Promise<void> {
  const client = new Client({ url, timeout: 5000, connectTimeout: 5000 });
  try {
    await client.bind(dn, password);
  } finally {
    await client.unbind().catch(() => {});
  }
}
