// Shared by the contract tests: fastify's route table against the OpenAPI document's operations.

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** fastify's `/v1/nodes/:node` in the document's syntax: `/v1/nodes/{node}`. */
export const openApiPath = (url: string): string => url.replace(/:([A-Za-z_]+)/g, '{$1}');
const key = (method: string, url: string) => `${method.toUpperCase()} ${url}`;

export interface RouteMismatch {
  /** Served (by fastify or a raw handler) but not in the document. */
  undocumented: string[];
  /** In the document but served by nothing. */
  phantom: string[];
  served: number;
}

/** Compares the routes a server registered (onRoute) plus the raw ones with the document's operations. */
export function routeMismatch(
  routes: readonly { method: string; url: string }[],
  raw: readonly { method: string; url: string }[],
  doc: { paths?: Record<string, Record<string, unknown>> },
): RouteMismatch {
  const served = new Set(routes.map((r) => key(r.method, openApiPath(r.url))));
  for (const r of raw) served.add(key(r.method, r.url));
  const documented = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of Object.keys(item)) {
      if ((HTTP_METHODS as readonly string[]).includes(method)) documented.add(key(method, path));
    }
  }
  return {
    undocumented: [...served].filter((r) => !documented.has(r)).sort(),
    phantom: [...documented].filter((r) => !served.has(r)).sort(),
    served: served.size,
  };
}
