// Settlement evidence from outside the tunnel (docs/market.md): `ee abuse report` (the launcher, with
// EE_LAUNCHER_TOKEN), `ee abuse show | authorize <report>` (admin: only authorised reports fail periods), and
// `ee usage report` (the uptime reporter, with EE_UPTIME_TOKEN). The service tokens are secrets like the admin
// token: sent only in the Authorization header, redacted from stderr.
import type { Command } from 'commander';
import { apiRequest, type GlobalOptions } from '../client.js';
import { intArg, leaseId, nodeId, periodArg, reportId, textArg } from '../market-args.js';
import {
  AbuseReportPageSchema,
  AbuseReportSchema,
  UsageReportSchema,
  type AbuseReport,
  type UsageReport,
} from '@easyenclave/sdk';
import { addIdempotencyOption, idempotentPost } from '../mutations.js';
import { addConnectionOptions, addExamples, addJsonOption, addServiceTokenOption, optsOf } from '../options.js';
import { formatFields, formatTable, printResult } from '../output.js';
import { addPageOptions, fetchPages, moreLine, type PageOptions } from '../pages.js';

type ReadOptions = GlobalOptions & { json?: boolean };
type PostOptions = ReadOptions & { idempotencyKey?: string };
type ReportOptions = PostOptions & { node: string; lease?: string; period?: string; reason: string };
type UsageOptions = PostOptions & {
  node: string;
  period: string;
  missedChecks: string;
  units?: string;
  detail?: string;
};

const reportTable = (d: AbuseReport): string =>
  formatFields([
    ['Report', d.report_id],
    ['Node', d.node_id],
    ['Lease', d.lease_id ?? '(any lease of the node)'],
    ['Period', d.period],
    ['Reason', d.reason],
    ['Status', d.status],
    ['Filed', d.filed_at],
    ['Authorized', d.authorized_at],
  ]) + (d.status === 'filed' ? '\nNot counted until the admin authorizes it (ee abuse authorize).' : '');

const usageTable = (d: UsageReport): string =>
  formatFields([
    ['Report', d.report_id],
    ['Node', d.node_id],
    ['Period', d.period],
    ['Units', d.units],
    ['Missed checks', d.missed_checks],
  ]);

/** A command that POSTs and prints: the shared flags, examples. */
const postCommand = (cmd: Command, examples: string[]) => {
  addJsonOption(addConnectionOptions(addIdempotencyOption(cmd)));
  return addExamples(cmd, examples);
};

export function registerAbuse(program: Command): void {
  const abuse = program
    .command('abuse')
    .description('abuse reports: report (launcher token), show and authorize (admin)');

  const report = addServiceTokenOption(
    abuse
      .command('report')
      .description('file an abuse report against a node (EE_LAUNCHER_TOKEN); it counts once authorized')
      .requiredOption('--node <node>', 'the node reported (node_…)')
      .requiredOption('--reason <text>', 'what happened (1-1000 characters)')
      .option('--lease <lease>', 'the lease affected (must be on that node; default: every lease of the node)')
      .option('--period <period>', "the period's start in ISO-8601 or its index (default: the current one)"),
    'launcher',
  );
  postCommand(report, ['EE_LAUNCHER_TOKEN=… ee abuse report --node node_0123456789abcdef --reason "served malware"']);
  report.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<ReportOptions>(cmd);
    nodeId(o.node);
    if (o.lease !== undefined) leaseId(o.lease);
    const body = {
      node: o.node,
      reason: textArg(o.reason, '--reason', 1000),
      ...(o.lease !== undefined ? { lease: o.lease } : {}),
      ...(o.period !== undefined ? { period: periodArg(o.period, '--period') } : {}),
    };
    const r = await idempotentPost(o.idempotencyKey, (key) =>
      apiRequest(
        {
          method: 'POST',
          path: '/v1/abuse/reports',
          auth: 'launcher',
          body,
          idempotencyKey: key,
          schema: AbuseReportSchema,
        },
        o,
      ),
    );
    printResult(r, { json: o.json, table: reportTable });
  });

  const show = abuse
    .command('show')
    .description('one abuse report (admin)')
    .argument('<report>', 'the report id (abuse_…)');
  addJsonOption(addConnectionOptions(show));
  addExamples(show, ['ee abuse show abuse_0123456789abcdef --json']);
  show.action(async (id: string, _o: unknown, cmd: Command) => {
    const o = optsOf<ReadOptions>(cmd);
    printResult(
      await apiRequest({ path: `/v1/abuse/reports/${reportId(id)}`, auth: 'admin', schema: AbuseReportSchema }, o),
      { json: o.json, table: reportTable },
    );
  });

  const list = addPageOptions(
    abuse
      .command('list')
      .description('abuse reports, newest first (admin)')
      .option('--node <node>', 'only the reports of this node'),
  );
  addExamples(list, ['ee abuse list', 'ee abuse list --node node_0123456789abcdef --all --json']);
  list.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<PageOptions & { node?: string }>(cmd);
    const query = o.node === undefined ? {} : { node: decodeURIComponent(nodeId(o.node)) };
    const r = await fetchPages(
      o,
      { path: '/v1/abuse/reports', auth: 'admin', schema: AbuseReportPageSchema, query },
      (p) => p.reports,
    );
    printResult(
      { reports: r.rows, next_cursor: r.next_cursor },
      {
        json: o.json,
        table: (d) =>
          formatTable(
            d.reports,
            [
              { header: 'report', value: (a) => a.report_id },
              { header: 'status', value: (a) => a.status },
              { header: 'node', value: (a) => a.node_id },
              { header: 'lease', value: (a) => a.lease_id },
              { header: 'period', value: (a) => a.period },
              { header: 'reason', value: (a) => a.reason },
            ],
            '(no reports)',
          ) + moreLine(d.next_cursor),
      },
    );
  });

  const authorize = abuse
    .command('authorize')
    .description("authorize a report (admin): it fails its periods and lowers the node's trust")
    .argument('<report>', 'the report id (abuse_…)');
  postCommand(authorize, ['EE_ADMIN_TOKEN=$(cat .easyenclave/admin-token) ee abuse authorize abuse_0123456789abcdef']);
  authorize.action(async (id: string, _o: unknown, cmd: Command) => {
    const o = optsOf<PostOptions>(cmd);
    const path = `/v1/abuse/reports/${reportId(id)}/authorize`;
    const r = await idempotentPost(o.idempotencyKey, (key) =>
      apiRequest({ method: 'POST', path, auth: 'admin', idempotencyKey: key, schema: AbuseReportSchema }, o),
    );
    printResult(r, { json: o.json, table: reportTable });
  });

  const usage = program.command('usage').description('uptime reports (EE_UPTIME_TOKEN)');
  const usageReport = addServiceTokenOption(
    usage
      .command('report')
      .description("report a node's uptime checks for a period; any missed check fails the node's lease-periods of it")
      .requiredOption('--node <node>', 'the node (node_…)')
      .requiredOption('--period <period>', "the period's start in ISO-8601 or its index")
      .requiredOption('--missed-checks <n>', 'uptime checks the node missed in the period (0 = none)')
      .option('--units <n>', 'usage units measured (default 0)')
      .option('--detail <text>', 'a note (at most 500 characters)'),
    'uptime',
  );
  postCommand(usageReport, [
    'EE_UPTIME_TOKEN=… ee usage report --node node_0123456789abcdef --period 2026-11-22T03:00:00Z --missed-checks 0',
  ]);
  usageReport.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<UsageOptions>(cmd);
    nodeId(o.node);
    const body = {
      node: o.node,
      period: periodArg(o.period, '--period'),
      missed_checks: intArg(o.missedChecks, '--missed-checks', 0, 1e9),
      ...(o.units !== undefined ? { units: intArg(o.units, '--units', 0, 1e12) } : {}),
      ...(o.detail !== undefined ? { detail: textArg(o.detail, '--detail', 500) } : {}),
    };
    const r = await idempotentPost(o.idempotencyKey, (key) =>
      apiRequest(
        {
          method: 'POST',
          path: '/v1/usage/report',
          auth: 'uptime',
          body,
          idempotencyKey: key,
          schema: UsageReportSchema,
        },
        o,
      ),
    );
    printResult(r, { json: o.json, table: usageTable });
  });
}
