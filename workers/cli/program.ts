/**
 * The `bionic` command line: one entry for what the platform's tools do. `migrate` and `saga` are
 * its own; `start`, `reset`, `seed`, `etl` and `cdc` hand over to the existing tools (the dev
 * launcher, workers/seed, workers/etl, workers/cdc), which keep their options, help and exit codes.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import commander from 'commander';
import pc from 'picocolors';
import type { Env } from '../../shared/config.ts';
import { closeAll, connect } from './db.ts';
import { cliEnv, requireVars } from './env.ts';
import { CliError, EXIT, explain } from './errors.ts';
import { migrate, MIGRATION_TARGETS, parseTargets } from './migrate.ts';
import { createOutput, type OutputStreams } from './output.ts';
import { listSagas, notFound, parseState, printSaga, printSagaList, showSaga } from './saga.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Commands that belong to another tool: the rest of the command line is passed on untouched. */
const HANDED_OVER: Record<string, { script: string; summary: string; args?: string[]; stackEnv: boolean }> = {
  start: { script: 'infra/dev/launcher.ts', summary: 'run the whole platform on embedded defaults (the same as npm start)', stackEnv: false },
  seed: { script: 'workers/seed/cli.ts', summary: 'fill CRM and telemetry with synthetic data (--customers N --days D)', stackEnv: true },
  etl: { script: 'workers/etl/cli.ts', summary: 'ETL: run | backfill --from D --to D | runs | status [--region ID]', stackEnv: true },
  cdc: { script: 'workers/cdc/cli.ts', summary: 'change data capture: start | status | resync <table> | drop-slot (--region <id> with REGIONS)', stackEnv: true },
};

const EPILOGUE = `
Exit codes (every command):
  0  done
  1  failed: a service is unreachable, a migration or a run failed
  2  usage error: unknown command or option, bad value, invalid configuration
  3  skipped: another ETL run is in progress (etl run)
  4  not found (saga show)

Configuration comes from the environment, as for the worker (README "Configuration"). While the
embedded stack runs (bionic start), variables left unset are taken from it (BIONIC_DATA_DIR,
default ./data). Run "bionic <command> --help" for a command's options.`;

export interface CliIo { env: Env; streams: OutputStreams }

/** How a run ended: an exit code, or handed over to another tool that exits by itself. */
export type CliOutcome = { exitCode: number } | { handedOver: string };

const version = (): string => (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Commander accepts surplus arguments silently; a typo should not be ignored. */
function noExtraArgs(cmd: commander.Command, expected: number): void {
  if (cmd.args.length > expected) throw new CliError(`unexpected argument "${cmd.args.slice(expected).join(' ')}" (see bionic ${cmd.parent?.name() === 'bionic' ? '' : `${cmd.parent?.name()} `}${cmd.name()} --help)`, EXIT.USAGE);
}

function positiveInt(name: string, v: string, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > max) throw new CliError(`--${name} must be an integer from 1 to ${max}, got "${v}"`, EXIT.USAGE);
  return n;
}

/** The program, and what to do after parsing when a command hands over to another tool. */
function buildProgram(io: CliIo): { program: commander.Command; next: () => (() => Promise<CliOutcome>) | undefined } {
  let after: (() => Promise<CliOutcome>) | undefined;
  const program = new commander.Command('bionic');
  program.exitOverride().storeOptionsAsProperties(false).passCommandToAction(false)
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .description('BionicPRO platform tools: run the stack, migrate, seed, ETL, CDC and inspect order sagas.')
    .on('--help', () => io.streams.stdout(EPILOGUE + '\n'));
  const env = () => {
    const r = cliEnv(io.env);
    if (r.stackDir) io.streams.stderr(pc.dim(`using the running embedded stack in ${r.stackDir} for unset variables`) + '\n');
    return r.env;
  };

  for (const [name, h] of Object.entries(HANDED_OVER)) program.command(`${name} [args...]`).description(h.summary).allowUnknownOption();

  program.command('reset').description('wipe the embedded stack\'s data directory (refused while it runs; the same as npm run reset)')
    .option('--data-dir <dir>', 'the data directory (default: BIONIC_DATA_DIR or ./data)')
    .action(function (this: commander.Command, opts: { dataDir?: string }) {
      noExtraArgs(this, 0);
      after = () => handOver('start', ['--reset', ...(opts.dataDir ? ['--data-dir', opts.dataDir] : [])], io);
    });

  program.command('migrate [targets...]')
    .description(`apply pending migrations (targets: ${MIGRATION_TARGETS.join(', ')}; default: crm telemetry platform)`)
    .option('--json', 'print what was applied as JSON')
    .on('--help', () => io.streams.stdout(`
Forward-only and checksummed; an advisory lock makes concurrent runs (workers starting) take turns,
so running it again is a no-op. clickhouse uses CLICKHOUSE_URL, or chDB in CHDB_PATH when no worker
holds it (the worker applies ClickHouse migrations itself at start).
Environment: CRM_DATABASE_URL, TELEMETRY_DATABASE_URL, PLATFORM_DATABASE_URL (for the targets asked for).
`))
    .action(async (targets: string[], opts: { json?: boolean }) => {
      await migrate(parseTargets(targets), env(), createOutput({ json: opts.json, streams: io.streams }));
    });

  const saga = program.command('saga').description('order sagas: ls | show <id>')
    .on('--help', () => io.streams.stdout('\nEnvironment: PLATFORM_DATABASE_URL (the saga tables live in the platform database).\n'));
  saga.command('ls').description('list sagas, newest first, with a count per state')
    .option('--state <state>', 'only sagas in this state (DRAFT, APPROVED, REJECTED, NOTIFICATION, FINISHED)')
    .option('--stuck', 'only sagas past their state\'s deadline (the sweeper should have timed them out)')
    .option('--limit <n>', 'how many (1-1000)', '20')
    .option('--json', 'print JSON')
    .action(async function (this: commander.Command, opts: { state?: string; stuck?: boolean; limit: string; json?: boolean }) {
      noExtraArgs(this, 0);
      const o = { state: parseState(opts.state), stuck: opts.stuck, limit: positiveInt('limit', opts.limit, 1000) };
      const platform = await connect('platform', requireVars(env(), ['PLATFORM_DATABASE_URL']).PLATFORM_DATABASE_URL);
      try {
        printSagaList(createOutput({ json: opts.json, streams: io.streams }), await listSagas(platform, o));
      } finally {
        await closeAll([platform]);
      }
    });
  saga.command('show <id>').description('one saga with its full history (id: order-42, or the order id 42)')
    .option('--json', 'print JSON')
    .action(async function (this: commander.Command, id: string, opts: { json?: boolean }) {
      noExtraArgs(this, 1);
      const platform = await connect('platform', requireVars(env(), ['PLATFORM_DATABASE_URL']).PLATFORM_DATABASE_URL);
      try {
        const s = await showSaga(platform, id);
        if (!s) throw notFound(id);
        printSaga(createOutput({ json: opts.json, streams: io.streams }), s);
      } finally {
        await closeAll([platform]);
      }
    });
  return { program, next: () => after };
}

/** Maps commander's own outcomes to exit codes: help and version are success, the rest is usage. */
function commanderExit(err: commander.CommanderError): number {
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.OK;
  return EXIT.USAGE; // unknown command or option, missing argument, or help shown for lack of a command
}

/** Hands over to another tool in this process: it reads `process.argv` and exits by itself. */
async function handOver(name: string, args: string[], io: CliIo): Promise<CliOutcome> {
  const h = HANDED_OVER[name]!;
  const help = args.includes('--help') || args.includes('-h');
  if (help) io.streams.stdout(`bionic ${name}: ${h.summary}. Its options (the tool ${h.script}):\n\n`);
  if (name === 'start' && !help) {
    // As `npm start`: install what is missing first.
    const setup = spawnSync('bash', [join(ROOT, 'infra/dev/setup.sh')], { stdio: 'inherit' });
    if (setup.status !== 0) return { exitCode: EXIT.FAILURE };
  }
  if (h.stackEnv && !help) {
    const r = cliEnv(io.env);
    for (const [k, v] of Object.entries(r.env)) if (v !== undefined && !process.env[k]) process.env[k] = v;
    if (r.stackDir) io.streams.stderr(pc.dim(`using the running embedded stack in ${r.stackDir} for unset variables`) + '\n');
  }
  const script = join(ROOT, h.script);
  process.argv = [process.argv[0]!, script, ...(h.args ?? []), ...args];
  await import(pathToFileURL(script).href);
  return { handedOver: h.script };
}

/**
 * Runs one command line (without `node` and the script). Errors become one line on stderr and an
 * exit code; with `LOG_LEVEL=debug` the stack trace follows.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<CliOutcome> {
  let args = [...argv];
  // `bionic help etl` is `bionic etl --help`, also for the tools handed over to.
  if (args[0] === 'help') args = args.length > 1 ? [...args.slice(1), '--help'] : ['--help'];
  if (args[0] && HANDED_OVER[args[0]]) return handOver(args[0], args.slice(1), io);
  try {
    const { program, next } = buildProgram(io);
    await program.parseAsync(['node', 'bionic', ...args]);
    return (await next()?.()) ?? { exitCode: EXIT.OK };
  } catch (err) {
    if (err instanceof Error && (err as commander.CommanderError).code?.startsWith?.('commander.')) {
      return { exitCode: commanderExit(err as commander.CommanderError) };
    }
    const { message, exitCode } = explain(err);
    io.streams.stderr(`${pc.red('error:')} ${message}\n`);
    if (io.env.LOG_LEVEL === 'debug' && err instanceof Error) io.streams.stderr(pc.dim(err.stack ?? '') + '\n');
    return { exitCode };
  }
}
