/**
 * The edge's report pages (hono/jsx, server-rendered): sign-in prompt, list of reports, one report
 * with its charts, and errors. Links and forms only — everything works without JavaScript.
 */
import type { FC } from 'hono/jsx';
import { periodLabel } from '../../shared/reports/period.ts';
import type { ReportSummary } from '../../shared/reports/ports.ts';
import type { Report } from '../../shared/reports/schema.ts';
import { BarChart, LineChart } from './charts.tsx';
import { Layout } from './layout.tsx';

const num = (v: number | null, digits = 0, unit = '') => (v === null ? '—' : `${v.toLocaleString('en-GB', { maximumFractionDigits: digits, minimumFractionDigits: digits })}${unit}`);
const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toLocaleString('en-GB', { maximumFractionDigits: 2 })} %`);
const hours = (minutes: number) => `${(minutes / 60).toLocaleString('en-GB', { maximumFractionDigits: 1 })} h`;

/** Progressive enhancement: the notifications feature fills the layout's slot live; without script it stays static. */
const LiveNotifications: FC = () => <script src="/notifications/live.js" defer />;

export const SignInPage: FC<{ returnTo: string }> = ({ returnTo }) => (
  <Layout title="Sign in">
    <h1>Your prosthesis reports</h1>
    <div class="card">
      <p>Sign in to see how your prosthesis is doing: daily use, errors, response time and battery.</p>
      <p><a id="sign-in" class="button primary" href={`/auth/login?returnTo=${encodeURIComponent(returnTo)}`}>Sign in</a></p>
    </div>
  </Layout>
);

export const ReportListPage: FC<{ username: string; reports: ReportSummary[]; today: string }> = ({ username, reports, today }) => (
  <Layout title="Reports" username={username}>
    <h1>Reports</h1>
    <div class="card">
      <table id="report-list">
        <thead><tr><th>Period</th><th>From</th><th>To</th><th>Downloads</th></tr></thead>
        <tbody>
          {reports.map((r) => (
            <tr data-period={r.period.id}>
              <td><a class="report-link" href={`/reports/${r.period.id}`}>{r.label}</a></td>
              <td>{r.period.from}</td><td>{r.period.to}</td>
              <td><a href={`/reports/${r.period.id}.csv`}>CSV</a> · <a href={`/reports/${r.period.id}.json`}>JSON</a></td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    <h2>Custom range</h2>
    <form class="range card" method="get" action="/reports">
      <label>From<input id="from" type="date" name="from" required max={today} /></label>
      <label>To<input id="to" type="date" name="to" required max={today} /></label>
      <button id="show-range" type="submit">Show report</button>
    </form>
    <LiveNotifications />
  </Layout>
);

export interface ReportPageProps {
  username: string;
  report: Report;
  /** A signed direct-download link, when links are enabled. */
  link?: { url: string; expiresAt: string };
}

export const ReportPage: FC<ReportPageProps> = ({ username, report, link }) => {
  const { period, totals, daily } = report;
  const days = daily.map((d) => d.day);
  const id = period.id;
  return (
    <Layout title={`Report ${periodLabel(period)}`} username={username}>
      <h1>Usage report · <span id="period-label">{periodLabel(period)}</span></h1>
      <p class="muted">
        {period.from} to {period.to} · {totals.daysWithData} of {daily.length} days with data · built {report.generatedAt.slice(0, 16).replace('T', ' ')} UTC
      </p>
      <p class="actions">
        <a id="download-csv" href={`/reports/${id}.csv`} download={`bionicpro-report-${id}.csv`}>Download CSV</a>
        <a id="download-json" href={`/reports/${id}.json`}>JSON</a>
        {link ? <a id="direct-link" href={link.url} title={`Valid until ${link.expiresAt}`}>Direct download link</a> : null}
      </p>
      <section class="stats" id="totals">
        <div class="stat"><b>{hours(totals.activeMinutes)}</b><span>active use</span></div>
        <div class="stat"><b>{num(totals.actions)}</b><span>actions</span></div>
        <div class="stat"><b>{pct(totals.errorRate)}</b><span>error rate ({num(totals.errors)} errors)</span></div>
        <div class="stat"><b>{num(totals.latencyP50Ms, 0, ' ms')}</b><span>median response · p95 {num(totals.latencyP95Ms, 0, ' ms')}</span></div>
        <div class="stat"><b>{num(totals.batteryAvg, 0, ' %')}</b><span>battery average · lowest {num(totals.batteryMin, 0, ' %')}</span></div>
      </section>
      {totals.daysWithData === 0 ? <p class="card" id="no-data">No usage was recorded in this period yet.</p> : null}
      <section class="charts">
        <BarChart id="chart-usage" title="Daily use (minutes)" days={days} format={(v) => num(v)}
          series={{ name: 'Active minutes', color: '#1f6feb', values: daily.map((d) => d.activeMinutes) }} />
        <LineChart id="chart-errors" title="Error rate" days={days} format={(v) => `${num(v * 100, 1)} %`}
          series={[{ name: 'Error rate', color: '#d1242f', values: daily.map((d) => d.errorRate) }]} />
        <LineChart id="chart-latency" title="Response time (ms)" days={days} format={(v) => num(v)}
          series={[
            { name: 'Median (p50)', color: '#1a7f37', values: daily.map((d) => d.latencyP50Ms) },
            { name: '95th percentile', color: '#bf8700', values: daily.map((d) => d.latencyP95Ms) },
          ]} />
        <LineChart id="chart-battery" title="Battery (%)" days={days} format={(v) => num(v)} yMax={100}
          series={[
            { name: 'Average', color: '#8250df', values: daily.map((d) => d.batteryAvg) },
            { name: 'Lowest', color: '#cf222e', values: daily.map((d) => d.batteryMin) },
          ]} />
      </section>
      <h2>Devices</h2>
      <div class="card">
        <table id="devices">
          <thead><tr><th>Chip</th><th>Model</th><th>Active</th><th>Actions</th><th>Error rate</th><th>Seen</th></tr></thead>
          <tbody>
            {report.devices.length === 0 ? <tr><td colspan={6} class="muted">No device reported in this period.</td></tr> : null}
            {report.devices.map((d) => (
              <tr>
                <td><code>{d.chipId}</code></td>
                <td>{d.model ? `${d.model.name} (${d.model.kind}, ${d.model.manufacturer})` : <span class="muted">unknown</span>}</td>
                <td>{hours(d.activeMinutes)}</td><td>{num(d.actions)}</td><td>{pct(d.errorRate)}</td><td>{d.firstDay} – {d.lastDay}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {report.topErrorCodes.length > 0 ? (
        <>
          <h2>Most frequent errors</h2>
          <div class="card"><table id="error-codes">
            <thead><tr><th>Code</th><th>Days among the most frequent</th></tr></thead>
            <tbody>{report.topErrorCodes.map((e) => <tr><td><code>{e.code}</code></td><td>{e.days}</td></tr>)}</tbody>
          </table></div>
        </>
      ) : null}
      <p><a href="/reports">← All reports</a></p>
      <LiveNotifications />
    </Layout>
  );
};

export const ErrorPage: FC<{ title: string; message: string; username?: string }> = ({ title, message, username }) => (
  <Layout title={title} username={username}>
    <h1>{title}</h1>
    <p class="card error" id="message">{message}</p>
    <p><a href="/reports">Back to your reports</a></p>
  </Layout>
);

