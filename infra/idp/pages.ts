/**
 * HTML of the development identity provider's own pages (sign-in, one-time code, enrolment,
 * sign-out, errors). Every interpolated value goes through `esc`; pages carry no third-party assets.
 */
export const esc = (s: unknown) =>
  String(s).replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · BionicPRO sign-in</title>
<style>
body{font-family:system-ui,sans-serif;background:#f3f5f8;margin:0;padding:48px 16px;color:#1c2430}
main{max-width:380px;margin:0 auto;background:#fff;border-radius:10px;box-shadow:0 2px 10px #0002;padding:28px 32px}
h1{font-size:1.3rem;margin:0 0 6px}p.sub{color:#5a6675;margin:0 0 20px}
label{display:block;font-size:.9rem;margin:14px 0 4px}input{width:100%;box-sizing:border-box;padding:9px;font-size:1rem;border:1px solid #b8c2cf;border-radius:6px}
button{margin-top:20px;width:100%;padding:10px;border:0;border-radius:6px;background:#1f6feb;color:#fff;font-size:1rem;cursor:pointer}
.error{background:#fde8e8;color:#9b1c1c;padding:10px;border-radius:6px;margin:0 0 12px}
code{word-break:break-all;font-size:.8rem}.qr svg{width:200px;height:200px;display:block;margin:12px auto}
a.cancel{display:block;text-align:center;margin-top:14px;color:#5a6675;font-size:.9rem}
</style></head><body><main>${body}</main></body></html>`;
}

const errorBox = (error?: string) => (error ? `<p class="error" role="alert" id="error">${esc(error)}</p>` : '');
const cancel = (action: string) => `<a class="cancel" href="${esc(action)}/abort">Cancel sign-in</a>`;

export function loginPage(p: { action: string; clientName: string; username?: string; error?: string }): string {
  return layout('Sign in', `<h1>Sign in</h1><p class="sub">to ${esc(p.clientName)}</p>${errorBox(p.error)}
<form method="post" action="${esc(p.action)}/password" autocomplete="on">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required autofocus value="${esc(p.username ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="sign-in">Sign in</button></form>${cancel(p.action)}`);
}

export function otpPage(p: { action: string; username: string; error?: string }): string {
  return layout('One-time code', `<h1>Two-step verification</h1><p class="sub">Enter the 6-digit code from your authenticator app for <b>${esc(p.username)}</b>.</p>${errorBox(p.error)}
<form method="post" action="${esc(p.action)}/otp">
<label for="code">One-time code</label><input id="code" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required autofocus>
<button type="submit" id="verify">Verify</button></form>${cancel(p.action)}`);
}

export function enrolPage(p: { action: string; username: string; uri: string; secret: string; qrSvg: string; error?: string }): string {
  return layout('Set up two-step verification', `<h1>Set up two-step verification</h1>
<p class="sub">Two-step verification is required. Scan the code with an authenticator app (FreeOTP, Google Authenticator, …), then enter the 6-digit code it shows.</p>${errorBox(p.error)}
<div class="qr" id="qr">${p.qrSvg}</div>
<p>Or enter this key manually: <code id="totp-secret">${esc(p.secret)}</code></p>
<p><a id="otpauth-uri" href="${esc(p.uri)}"><code>${esc(p.uri)}</code></a></p>
<form method="post" action="${esc(p.action)}/enrol">
<label for="code">One-time code</label><input id="code" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required autofocus>
<button type="submit" id="verify">Verify and finish</button></form>${cancel(p.action)}`);
}

export function errorPage(p: { title: string; message: string }): string {
  return layout(p.title, `<h1>${esc(p.title)}</h1><p class="error" role="alert" id="error">${esc(p.message)}</p>`);
}

/** oidc-provider hands the sign-out form (with its CSRF field) as ready HTML; it is trusted. */
export function logoutPage(p: { form: string; host: string }): string {
  return layout('Sign out', `<h1>Sign out</h1><p class="sub">Sign out of BionicPRO on ${esc(p.host)}?</p>${p.form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout" id="sign-out">Yes, sign me out</button>`);
}

export function loggedOutPage(): string {
  return layout('Signed out', '<h1>Signed out</h1><p class="sub">You have been signed out.</p>');
}
