// `ee health`: GET /health, the control plane's liveness (public).
import type { Command } from 'commander';
import { HealthSchema } from '@easyenclave/sdk';
import { apiRequest, type GlobalOptions } from '../client.js';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { formatFields, printResult } from '../output.js';

export function registerHealth(program: Command): void {
  const health = program
    .command('health')
    .description('is the control plane up: status (ok or draining), uptime, agents connected, apps known');
  addJsonOption(addConnectionOptions(health));
  addExamples(health, ['ee health', 'ee health --url https://control.example.com --json']);
  health.addHelpText(
    'after',
    '\nExit codes: 0 it answered (whatever the status); 1 it could not be reached; 2 usage errors.',
  );
  health.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<GlobalOptions & { json?: boolean }>(cmd);
    const h = await apiRequest({ path: '/health', auth: 'none', schema: HealthSchema }, o);
    printResult(h, {
      json: o.json,
      table: (d) =>
        formatFields([
          ['Status', d.status],
          ['Uptime', `${d.uptime_s} s`],
          ['Agents connected', d.agents_connected],
          ...(d.agents_routable !== undefined ? [['Agents routable', d.agents_routable] as [string, number]] : []),
          ['Apps known', d.apps_known],
        ]),
    });
  });
}
