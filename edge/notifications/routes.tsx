/**
 * Browser-facing notification routes at the edge (the typed clients use the tRPC subscription
 * `notifications.onNotification` instead; both read the same feed):
 *
 * - `GET /notifications` — the signed-in user's recent notifications, updating live.
 * - `GET /notifications/stream` — plain Server-Sent Events for `EventSource`: one `notification`
 *   event per notification, its `id` the stream position, so the browser's automatic reconnect
 *   (`Last-Event-ID`) resumes where it stopped; `?lastEventId=` does the same by hand. 429 with a
 *   JSON error when the user already holds the most connections allowed; 403 when the user's region
 *   cannot be told (the feed reads their region's KV).
 * - `GET /notifications/live.js` — fills any page's `<section id="notifications" data-stream="…">`
 *   (the slot edge/ui/layout.tsx renders) from that stream; pages opt in with
 *   `<script src="/notifications/live.js" defer>`.
 */
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Identity } from '../../router/context.ts';
import type { Logger } from '../../shared/log.ts';
import { ConnectionLimitError, type NotificationFeed } from '../../shared/notifications/feed.ts';
import type { StreamEntry } from '../../shared/notifications/stream.ts';
import { ResidencyError } from '../../shared/regions/residency.ts';
import { Layout } from '../ui/layout.tsx';

type Env = { Variables: { identity: Identity | null; log: Logger } };

const HEARTBEAT_MS = 15_000;

const LIVE_JS = `(() => {
  const area = document.getElementById('notifications');
  if (!area || !window.EventSource) return;
  const list = document.getElementById('notification-list');
  const base = area.dataset.stream || '/notifications/stream';
  // On the notifications page, continue right after the newest entry it rendered.
  const after = list ? list.dataset.after : '';
  const es = new EventSource(after ? base + (base.includes('?') ? '&' : '?') + 'lastEventId=' + encodeURIComponent(after) : base);
  let empty = !list;
  es.addEventListener('notification', (e) => {
    const n = JSON.parse(e.data);
    const item = document.createElement(list ? 'li' : 'div');
    item.className = 'notification ' + (n.kind === 'order.approved' ? 'ok' : 'warn');
    const title = document.createElement('b');
    title.textContent = n.title;
    item.append(title, ' ', n.body);
    if (empty) { area.textContent = ''; empty = false; }
    (list || area).prepend(item);
  });
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CLOSED) area.dataset.state = 'closed';
  });
})();
`;

export function notificationRoutes(feed: NotificationFeed) {
  const app = new Hono<Env>();

  app.get('/notifications/live.js', (c) =>
    c.body(LIVE_JS, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=300' }));

  app.get('/notifications/stream', async (c) => {
    const identity = c.get('identity');
    if (!identity) return c.json({ error: { code: 'UNAUTHORIZED', message: 'Sign in first' } }, 401);
    const ac = new AbortController();
    c.req.raw.signal.addEventListener('abort', () => ac.abort(), { once: true });
    let entries: AsyncGenerator<StreamEntry>;
    try {
      entries = await feed.open(identity, { lastEventId: c.req.header('last-event-id') ?? c.req.query('lastEventId'), signal: ac.signal, log: c.get('log') });
    } catch (err) {
      if (err instanceof ResidencyError) return c.json({ error: { code: 'FORBIDDEN', message: err.message } }, 403);
      if (!(err instanceof ConnectionLimitError)) throw err;
      return c.json({ error: { code: 'TOO_MANY_REQUESTS', message: err.message } }, 429);
    }
    c.header('cache-control', 'no-store');
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => ac.abort());
      // Comments keep proxies from closing an idle stream and reveal a vanished client.
      const beat = setInterval(() => void stream.write(': ping\n\n').catch(() => ac.abort()), HEARTBEAT_MS);
      try {
        for await (const e of entries) await stream.writeSSE({ id: String(e.seq), event: 'notification', data: JSON.stringify(e) });
      } finally {
        clearInterval(beat);
        await entries.return(undefined);
      }
    }, async (err) => {
      c.get('log').warn('notification stream failed', { err });
    });
  });

  app.get('/notifications', async (c) => {
    const identity = c.get('identity');
    if (!identity) return c.redirect('/auth/login?returnTo=%2Fnotifications', 302);
    let recent: StreamEntry[];
    try { recent = await feed.recent(identity, 50, c.get('log')); } catch (err) {
      if (!(err instanceof ResidencyError)) throw err;
      return c.json({ error: { code: 'FORBIDDEN', message: err.message } }, 403);
    }
    c.header('cache-control', 'private, no-store');
    return c.html(
      <Layout title="Notifications" username={identity.username}>
        <h1>Notifications</h1>
        <ul id="notification-list" class="card" data-after={String(recent[0]?.seq ?? 0)}>
          {recent.length === 0 ? <li class="muted">Nothing yet.</li> : recent.map((n) => (
            <li class={`notification ${n.kind === 'order.approved' ? 'ok' : 'warn'}`}>
              <b>{n.title}</b> {n.body} <span class="muted">{new Date(n.createdAt).toLocaleString('en-GB', { timeZone: 'UTC' })} UTC</span>
            </li>
          ))}
        </ul>
        <script src="/notifications/live.js" defer />
      </Layout>,
    );
  });

  return app;
}
