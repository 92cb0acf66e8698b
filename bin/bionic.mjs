#!/usr/bin/env node
// The `bionic` command (package.json "bin"). Runs the TypeScript sources directly through tsx, so a
// clean checkout needs no build step. See workers/cli/program.ts, or `bionic --help`.
import { register } from 'tsx/esm/api';

register();
const { quietPinnedSdkWarning } = await import('../workers/node-warnings.ts');
quietPinnedSdkWarning();
const { runCli } = await import('../workers/cli/program.ts');
const outcome = await runCli(process.argv.slice(2), {
  env: process.env,
  streams: { stdout: (s) => void process.stdout.write(s), stderr: (s) => void process.stderr.write(s) },
});
// A tool handed over to (etl, cdc, seed, start) sets its own exit code when it is done.
if ('exitCode' in outcome) process.exitCode = outcome.exitCode;
