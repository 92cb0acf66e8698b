/**
 * `npm run bench -- <name>` runs tests/bench/<name>.ts. Each benchmark starts what it needs,
 * prints a table with its baseline side by side, and ends with one line `RESULT <name> k=v …`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here).filter((f) => f.endsWith('.ts') && !['run.ts', 'util.ts'].includes(f)).map((f) => f.slice(0, -3));
const [name, ...rest] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h') {
  console.log(`Usage: npm run bench -- <name> [options]\n\nBenchmarks: ${available.join(', ')}`);
  process.exit(name ? 0 : 2);
}
const file = join(here, `${name}.ts`);
if (!existsSync(file)) {
  console.error(`Unknown benchmark "${name}". Available: ${available.join(', ')}`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...rest], { stdio: 'inherit' });
process.exit(r.status ?? 1);
