// `ee_build_info`: one gauge at 1 whose labels name what is running (component, version, Node.js version), the
// Prometheus convention for joining build facts onto other series. Shared by the control plane, the agent and
// the launcher; imported by path (@easyenclave/protocol/ops/build-info), not from the package's main entry.
import { readFileSync } from 'node:fs';
import { Gauge, type Registry } from 'prom-client';

/** The monorepo's version (every package carries the same one), read once. */
export const BUILD_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export function buildInfoGauge(registry: Registry, component: string): Gauge {
  const g = new Gauge({
    name: 'ee_build_info',
    help: 'Build facts of this process (always 1)',
    labelNames: ['component', 'version', 'node_version'],
    registers: [registry],
  });
  g.labels(component, BUILD_VERSION, process.versions.node).set(1);
  return g;
}
