/**
 * Time from `npm start` to a ready platform (`/ready` 200): cold (fresh data directory: initdb, migrations,
 * demo data) and warm (same directory again), against a baseline of starting a bare Node process
 * that serves one HTTP route, measured side by side in the same run.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchStack } from '../support/launcher.ts';

async function timeHealthy(dataDir: string) {
  const t0 = performance.now();
  const stack = await launchStack(['--data-dir', dataDir, '--edge-port', '0', '--worker-port', '0']);
  const res = await fetch(`${stack.edge}/ready`);
  const seconds = (performance.now() - t0) / 1000;
  if (res.status !== 200) throw new Error(`/ready answered ${res.status}: ${await res.text()}`);
  await stack.stop();
  return seconds;
}

async function timeBaseline() {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['-e', `require('http').createServer((q,s)=>s.end('ok')).listen(0,'127.0.0.1',function(){console.log(this.address().port)})`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((res) => child.stdout!.once('data', (d) => res(String(d).trim())));
  await (await fetch(`http://127.0.0.1:${port}/`)).text();
  const seconds = (performance.now() - t0) / 1000;
  child.kill('SIGTERM');
  return seconds;
}

const dir = mkdtempSync(join(tmpdir(), 'bionic-bench-startup-'));
try {
  const baseline = await timeBaseline();
  const cold = await timeHealthy(dir);
  const warm = await timeHealthy(dir);
  const row = (name: string, s: number) => console.log(`${name.padEnd(28)} ${s.toFixed(2).padStart(8)} s ${(s / baseline).toFixed(1).padStart(8)}×`);
  console.log(`${'run'.padEnd(28)} ${'time'.padStart(10)} ${'vs base'.padStart(9)}`);
  row('baseline: bare node http', baseline);
  row('cold start → /ready 200', cold);
  row('warm start → /ready 200', warm);
  console.log(`RESULT startup healthy_s=${warm.toFixed(2)} cold_s=${cold.toFixed(2)} baseline_s=${baseline.toFixed(3)} ratio_warm=${(warm / baseline).toFixed(1)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
