/**
 * The identity provider's own sign-in pages (oidc-provider "interactions"): username + password
 * checked against LDAP, then a TOTP code — or TOTP enrolment on first sign-in. Failed passwords
 * are counted per username and per client address (Keycloak's brute-force detection); a sign-in
 * with too many wrong codes is aborted. Forms follow post/redirect/get.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Provider } from 'oidc-provider';
import QRCode from 'qrcode';
import type { Account, LdapAccounts } from './ldap-accounts.ts';
import { enrolPage, errorPage, loginPage, otpPage } from './pages.ts';
import type { TotpStore } from './totp-store.ts';

export interface InteractionOptions {
  provider: Provider;
  accounts: LdapAccounts;
  totp: TotpStore;
  mountPath: string;
  /** Wrong passwords allowed per username (and 4× that per address) in `lockoutWindowMs`. */
  maxPasswordFailures?: number;
  lockoutWindowMs?: number;
  maxOtpFailures?: number;
}

type Step = { kind: 'otp' | 'enrol'; account: Account; otpFailures: number; error?: string } | { kind: 'password'; error?: string; username?: string };

/** Per-interaction progress; entries of abandoned sign-ins go once the interaction itself has expired. */
class Steps {
  private readonly map = new Map<string, { step: Step; at: number }>();
  constructor(private readonly ttlMs: number) {}
  get(uid: string): Step | undefined { return this.map.get(uid)?.step; }
  set(uid: string, step: Step): void {
    const now = Date.now();
    if (this.map.size > 1000) for (const [k, v] of this.map) if (now - v.at > this.ttlMs) this.map.delete(k);
    this.map.set(uid, { step, at: now });
  }
  delete(uid: string): void { this.map.delete(uid); }
}

/** Sliding log of failure times per key; small and in memory, like the rest of the dev IdP's state. */
class Failures {
  private readonly log = new Map<string, number[]>();
  constructor(private readonly windowMs: number) {}
  count(key: string, now = Date.now()): number {
    const recent = (this.log.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (recent.length) this.log.set(key, recent); else this.log.delete(key);
    return recent.length;
  }
  add(key: string): void { this.log.set(key, [...(this.log.get(key) ?? []), Date.now()]); }
  clear(key: string): void { this.log.delete(key); }
}

const SECURITY_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // No form-action: browsers apply it to the redirect chain back to the client's callback.
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
};

function send(res: ServerResponse, status: number, html: string) {
  res.writeHead(status, SECURITY_HEADERS).end(html);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 8192) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

/** Returns a handler for `<mountPath>/login-actions/<uid>[/<action>]`; false when the path is not ours. */
export function interactionHandler(opts: InteractionOptions) {
  const { provider, accounts, totp } = opts;
  const steps = new Steps(10 * 60_000);
  const windowMs = opts.lockoutWindowMs ?? 15 * 60_000;
  const maxPassword = opts.maxPasswordFailures ?? 5;
  const maxOtp = opts.maxOtpFailures ?? 5;
  const failures = new Failures(windowMs);
  const prefix = `${opts.mountPath}/login-actions/`;

  async function render(res: ServerResponse, uid: string, clientName: string, status = 200) {
    const step = steps.get(uid) ?? { kind: 'password' };
    const action = `${prefix}${uid}`;
    if (step.kind === 'password') return send(res, status, loginPage({ action, clientName, username: step.username, error: step.error }));
    if (step.kind === 'otp') return send(res, status, otpPage({ action, username: step.account.username, error: step.error }));
    const pending = totp.pending(step.account.username) ?? (await totp.beginEnrolment(step.account.username));
    const qrSvg = await QRCode.toString(pending.uri, { type: 'svg', margin: 1 });
    send(res, status, enrolPage({ action, username: step.account.username, uri: pending.uri, secret: pending.secret, qrSvg, error: step.error }));
  }

  const finish = (req: IncomingMessage, res: ServerResponse, uid: string, account: Account, amr: string[]) => {
    steps.delete(uid);
    return provider.interactionFinished(req, res, { login: { accountId: account.sub, amr, acr: amr.includes('otp') ? 'mfa' : 'pwd', remember: false } }, { mergeWithLastSubmission: false });
  };

  async function handle(req: IncomingMessage, res: ServerResponse, path: string, clientIp: string): Promise<void> {
    const [uid = '', action = ''] = path.slice(prefix.length).split('/');
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      return send(res, 400, errorPage({ title: 'Sign-in expired', message: 'This sign-in page has expired. Go back to the application and sign in again.' }));
    }
    if (details.uid !== uid) return send(res, 400, errorPage({ title: 'Sign-in expired', message: 'This sign-in page does not belong to your current sign-in.' }));
    const clientName = String(details.params.client_id ?? 'BionicPRO');
    const back = () => { res.writeHead(303, { location: `${prefix}${uid}`, 'cache-control': 'no-store' }).end(); };
    const step = steps.get(uid) ?? { kind: 'password' as const };

    if (req.method === 'GET' && action === '') return render(res, uid, clientName);
    if (req.method === 'GET' && action === 'abort') {
      steps.delete(uid);
      return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user cancelled sign-in' }, { mergeWithLastSubmission: false });
    }
    if (req.method !== 'POST') return send(res, 405, errorPage({ title: 'Not allowed', message: 'Use the sign-in form.' }));
    const form = await readForm(req);

    if (action === 'password') {
      const username = (form.get('username') ?? '').trim().toLowerCase();
      const userKey = `u:${username}`;
      const ipKey = `ip:${clientIp}`;
      if (failures.count(userKey) >= maxPassword || failures.count(ipKey) >= maxPassword * 4) {
        steps.set(uid, { kind: 'password', username, error: 'Too many failed sign-in attempts. Try again in a few minutes.' });
        return render(res, uid, clientName, 429);
      }
      const account = await accounts.authenticate(username, form.get('password') ?? '');
      if (!account) {
        failures.add(userKey);
        failures.add(ipKey);
        steps.set(uid, { kind: 'password', username, error: 'Invalid username or password.' });
        return render(res, uid, clientName, 401);
      }
      failures.clear(userKey);
      if (account.otpExempt) return finish(req, res, uid, account, ['pwd']);
      steps.set(uid, { kind: totp.secret(account.username) ? 'otp' : 'enrol', account, otpFailures: 0 });
      return back();
    }

    if ((action === 'otp' || action === 'enrol') && step.kind === action) {
      const ok = await totp.verify(step.account.username, (form.get('code') ?? '').trim(), { enrolling: action === 'enrol' });
      if (ok) return finish(req, res, uid, step.account, ['pwd', 'otp']);
      step.otpFailures += 1;
      if (step.otpFailures >= maxOtp) {
        steps.delete(uid);
        return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'Too many invalid one-time codes' }, { mergeWithLastSubmission: false });
      }
      step.error = 'Invalid or already used code. Try the next code from your app.';
      return render(res, uid, clientName, 401);
    }
    return send(res, 400, errorPage({ title: 'Sign-in problem', message: 'That step is not part of this sign-in.' }));
  }

  return { prefix, handle };
}
