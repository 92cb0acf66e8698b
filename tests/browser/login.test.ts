/**
 * Sign-in in a real browser (Debian's Chromium driven by playwright-core) through the real pages:
 * the edge redirects to the development identity provider, the user types the LDAP password and
 * the TOTP code, and lands back on the edge signed in — with an HttpOnly cookie scripts cannot read.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthStack, type AuthStack } from '../support/auth-stack.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let stack: AuthStack;
let browser: Browser;
let context: BrowserContext;
let profile: string;

beforeAll(async () => {
  stack = await startAuthStack();
  profile = await mkdtemp(join(tmpdir(), 'bionic-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  browser = context.browser()!;
}, 180_000);

afterAll(async () => {
  await context?.close();
  await browser?.close().catch(() => {});
  await stack?.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
}, 60_000);

describe('browser sign-in', () => {
  it('signs in with password and TOTP through the real pages', async () => {
    const page = await context.newPage();
    await page.goto(`${stack.edgeUrl}/auth/login?returnTo=/auth/me`);
    await expect.poll(() => page.url()).toContain('/realms/bionicpro/login-actions/');
    await page.fill('#username', 'user1');
    await page.fill('#password', 'bionic-demo');
    await page.click('#sign-in');
    await page.waitForSelector('#code');
    expect(await page.textContent('h1')).toBe('Two-step verification');
    await page.fill('#code', '000000');
    await page.click('#verify');
    await page.waitForSelector('#error');
    expect(await page.textContent('#error')).toContain('Invalid or already used code');
    await page.fill('#code', await stack.totp('user1'));
    await Promise.all([page.waitForURL(`${stack.edgeUrl}/auth/me`), page.click('#verify')]);
    const me = JSON.parse(await page.innerText('body')) as { username: string; roles: string[] };
    expect(me).toMatchObject({ username: 'user1', roles: ['prosthesis_user'] });

    const cookies = await context.cookies(stack.edgeUrl);
    const session = cookies.find((c) => c.name === '__Host-session');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });
    expect(await page.evaluate(() => document.cookie)).not.toContain('__Host-session');

    // Logout from page script, as a frontend would: the CSRF header, then the provider's end-session page.
    const { redirectTo } = await page.evaluate(async () => {
      const res = await fetch('/auth/logout', { method: 'POST', headers: { 'x-bionic-csrf': '1', accept: 'application/json' } });
      return res.json() as Promise<{ redirectTo: string }>;
    });
    await page.goto(redirectTo);
    await Promise.all([page.waitForURL(`${stack.edgeUrl}/auth/logged-out`), page.click('#sign-out')]);
    expect(await page.textContent('h1')).toBe('Signed out');
    const after = await page.goto(`${stack.edgeUrl}/auth/me`);
    expect(after!.status()).toBe(401);
  });

  it('enrols a new user: the page shows the QR code and otpauth:// link', async () => {
    const page = await context.newPage();
    await page.goto(`${stack.edgeUrl}/auth/login?returnTo=/auth/me`);
    await page.fill('#username', 'user3');
    await page.fill('#password', 'bionic-demo');
    await page.click('#sign-in');
    await page.waitForSelector('#qr svg');
    const uri = await page.getAttribute('#otpauth-uri', 'href');
    expect(uri).toMatch(/^otpauth:\/\/totp\/BionicPRO:user3\?/);
    const { Secret, TOTP } = await import('otpauth');
    const secret = await page.textContent('#totp-secret');
    await page.fill('#code', new TOTP({ secret: Secret.fromBase32(secret!) }).generate());
    await Promise.all([page.waitForURL(`${stack.edgeUrl}/auth/me`), page.click('#verify')]);
    expect(await page.innerText('body')).toContain('"username":"user3"');
  });
});
