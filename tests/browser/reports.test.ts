/**
 * Reports in a real browser (Debian's Chromium, playwright-core), without any client-side script:
 * sign in from the reports page, pick a custom range in the form, see the SVG charts, download the
 * CSV. A full-page screenshot is kept in tests/artifacts/reports-page.png.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utcToday } from '../../shared/reports/period.ts';
import { statRow } from '../support/reports-data.ts';
import { startReportsStack, type ReportsStack } from '../support/reports-stack.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '../artifacts');
let stack: ReportsStack;
let context: BrowserContext;
let profile: string;

beforeAll(async () => {
  stack = await startReportsStack();
  profile = await mkdtemp(join(tmpdir(), 'bionic-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, acceptDownloads: true, viewport: { width: 1200, height: 900 },
    // Scripts off: the pages must work without them.
    javaScriptEnabled: false,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 180_000);

afterAll(async () => {
  await context?.close();
  await stack?.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
}, 60_000);

const DAYS = 14;
const daysBack = (n: number) => new Date(Date.parse(`${utcToday()}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10);

describe('reports in the browser', () => {
  it('signs in, opens a report with charts, and downloads its CSV', async () => {
    const page = await context.newPage();
    await page.goto(`${stack.edgeUrl}/reports`);
    await Promise.all([page.waitForURL(/\/login-actions\//), page.click('#sign-in')]);
    await page.fill('#username', 'user1');
    await page.fill('#password', 'bionic-demo');
    await page.click('#sign-in');
    await page.waitForSelector('#code');
    await page.fill('#code', await stack.auth.totp('user1'));
    await Promise.all([page.waitForURL(`${stack.edgeUrl}/reports`), page.click('#verify')]);
    expect(await page.textContent('#who')).toContain('user1');
    expect(await page.locator('#report-list a.report-link').count()).toBe(5);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'reports-list.png'), fullPage: true });

    const me = await page.request.get(`${stack.edgeUrl}/auth/me`);
    const { userId } = (await me.json()) as { userId: string };
    // Two weeks of a plausible prosthesis: weekday rhythm, a bad day, a battery running down and recharged.
    await stack.olap.insert('user_prosthesis_stats', Array.from({ length: DAYS }, (_, i) => statRow({
      user_id: userId, chip_id: 'chip-demo-1', day: daysBack(DAYS - 1 - i),
      active_minutes: 180 + ((i * 37) % 90) - (i % 7 >= 5 ? 80 : 0), actions: 600 + ((i * 53) % 200),
      errors: i === 6 ? 60 : 4 + (i % 5), latency_p50_ms: 70 + (i % 4) * 6, latency_p95_ms: 150 + ((i * 29) % 70),
      battery_min: 15 + ((i * 11) % 30), battery_avg: 55 + ((i * 7) % 30), grip_force_avg: 18 + (i % 3),
      top_error_codes: i === 6 ? ['E42', 'E7'] : ['E7'],
    })));

    await page.fill('#from', daysBack(DAYS - 1));
    await page.fill('#to', daysBack(0));
    await Promise.all([page.waitForURL(/\/reports\/\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}$/), page.click('#show-range')]);
    await page.waitForSelector('svg#chart-usage');
    expect(await page.locator('svg#chart-usage rect.bar').count()).toBe(DAYS);
    expect(await page.locator('svg#chart-errors path.line').count()).toBe(1);
    expect(await page.locator('svg#chart-latency path.line').count()).toBe(2);
    expect(await page.locator('svg#chart-battery circle.point').count()).toBe(2 * DAYS);
    for (const id of ['chart-errors', 'chart-latency', 'chart-battery']) {
      const d = await page.getAttribute(`svg#${id} path.line`, 'd');
      expect(d, id).toMatch(/^M[\d.]+,[\d.]+(L[\d.]+,[\d.]+){13}$/);
    }
    // The charts are drawn at a real size, not collapsed.
    const box = await page.locator('svg#chart-usage').boundingBox();
    expect(box!.width).toBeGreaterThan(300);
    expect(box!.height).toBeGreaterThan(100);
    expect(await page.textContent('#devices')).toContain('chip-demo-1');

    await page.screenshot({ path: join(ARTIFACTS, 'reports-page.png'), fullPage: true });

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-csv')]);
    expect(download.suggestedFilename()).toMatch(/^bionicpro-report-\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = (await readFile((await download.path())!, 'utf8')).trim().split('\r\n');
    expect(csv[0]).toBe('day,active_minutes,actions,errors,error_rate,latency_p50_ms,latency_p95_ms,battery_min_pct,battery_avg_pct,grip_force_avg_n');
    expect(csv).toHaveLength(DAYS + 1);
    expect(csv[7]).toMatch(new RegExp(`^${daysBack(DAYS - 7)},\\d+,\\d+,60,`));
  });
});
