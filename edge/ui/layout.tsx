/**
 * The page shell of the edge's own pages: no client-side JavaScript needed, one small stylesheet,
 * and the slot for live notifications (filled by the notifications feature where present).
 */
import type { FC } from 'hono/jsx';

const CSS = `
:root{--ink:#1c2430;--muted:#5a6675;--line:#e3e7ee;--bg:#f6f8fb;--accent:#1f6feb}
*{box-sizing:border-box}body{margin:0;font-family:system-ui,-apple-system,Segoe UI,sans-serif;color:var(--ink);background:var(--bg)}
header.top{display:flex;align-items:center;gap:1.5rem;padding:.8rem 1.5rem;background:#fff;border-bottom:1px solid var(--line)}
header.top .brand{font-weight:700;color:var(--ink);text-decoration:none}header.top nav a{color:var(--muted);text-decoration:none;margin-right:1rem}
header.top .who{margin-left:auto;color:var(--muted);font-size:.9rem}
main{max-width:62rem;margin:1.5rem auto;padding:0 1.5rem}h1{font-size:1.5rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
a{color:var(--accent)}.muted{color:var(--muted)}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:1rem 1.2rem;margin-bottom:1rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line)}th{font-weight:600;color:var(--muted);font-size:.85rem}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.8rem;margin-bottom:1rem}
.stat{background:#fff;border:1px solid var(--line);border-radius:10px;padding:.7rem .9rem}.stat b{display:block;font-size:1.3rem}.stat span{color:var(--muted);font-size:.8rem}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(26rem,1fr));gap:1rem}
figure.chart{margin:0;background:#fff;border:1px solid var(--line);border-radius:10px;padding:.8rem}
figure.chart figcaption{font-weight:600;margin-bottom:.3rem}.chart-svg{width:100%;height:auto;display:block}
.chart-svg .grid{stroke:#edf0f4}.chart-svg text{font-size:11px;fill:var(--muted)}
ul.legend{list-style:none;margin:.3rem 0 0;padding:0;display:flex;gap:1rem;font-size:.85rem;color:var(--muted)}
ul.legend i{display:inline-block;width:.7rem;height:.7rem;border-radius:2px;margin-right:.3rem;vertical-align:-1px}
.actions a,.button{display:inline-block;padding:.45rem .9rem;border-radius:8px;border:1px solid var(--line);background:#fff;text-decoration:none;margin-right:.5rem}
.button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
form.range{display:flex;gap:.6rem;align-items:end;flex-wrap:wrap}form.range label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted)}
input,button{font:inherit;padding:.35rem .5rem;border:1px solid #c9d1dc;border-radius:6px}button{background:var(--accent);color:#fff;border-color:var(--accent);cursor:pointer}
#notifications{border:1px dashed var(--line);border-radius:10px;padding:.6rem .9rem;margin-bottom:1rem;color:var(--muted);font-size:.9rem}
.error{background:#fff4f4;border-color:#f2c4c4}
`;

export interface LayoutProps {
  title: string;
  /** The signed-in user's name; absent on public pages. */
  username?: string;
  children?: unknown;
}

export const Layout: FC<LayoutProps> = ({ title, username, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width,initial-scale=1" />
      <title>{`${title} · BionicPRO`}</title>
      <style dangerouslySetInnerHTML={{ __html: CSS }} />
    </head>
    <body>
      <header class="top">
        <a class="brand" href="/reports">BionicPRO</a>
        <nav><a href="/reports">Reports</a></nav>
        {username ? <span class="who" id="who">Signed in as <b>{username}</b></span> : null}
      </header>
      <main>
        {username ? (
          <section id="notifications" aria-live="polite" aria-label="Notifications" data-stream="/notifications/stream">
            No new notifications.
          </section>
        ) : null}
        {children}
      </main>
    </body>
  </html>
);
