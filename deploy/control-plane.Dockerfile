# syntax=docker/dockerfile:1
# The control plane image: `ee control-plane` as the unprivileged `node` user, state in /var/lib/easyenclave.
# Build from the repository root:  docker build -f deploy/control-plane.Dockerfile -t easyenclave/control-plane .
# Configure with EE_* variables (README.md); plain HTTP on 8088 (API, tunnel) and 9090 (apps) behind a TLS
# proxy (deploy/nginx, deploy/caddy), or set EE_TLS_CERT_FILE / EE_TLS_KEY_FILE to serve TLS itself.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# node-gyp builds better-sqlite3 when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages ./packages
RUN npm ci --no-audit --no-fund \
 && npx tsc -b packages/cli \
 && npm prune --omit=dev --no-audit --no-fund
# Only what runs: each package's manifest and compiled output, the CLI's bin shim, production node_modules,
# and of better-sqlite3 its compiled addon (its SQLite sources and object files are some 30 MB).
RUN mkdir -p /out/packages \
 && for p in packages/*; do mkdir -p "/out/$p" && cp -r "$p/package.json" "$p/dist" "/out/$p/"; done \
 && cp -r packages/cli/bin /out/packages/cli/ \
 && cp -r package.json node_modules /out/ \
 && cd /out/node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node . && rm -rf build deps src \
 && mkdir -p build/Release && mv better_sqlite3.node build/Release/

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    EE_DB_PATH=/var/lib/easyenclave/control-plane.db \
    GLIBC_TUNABLES=glibc.malloc.arena_max=2
WORKDIR /app
COPY --from=build /out/ ./
RUN mkdir -p /var/lib/easyenclave && chown node:node /var/lib/easyenclave
USER node
VOLUME /var/lib/easyenclave
EXPOSE 8088 9090
HEALTHCHECK --interval=10s --timeout=3s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8088/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains (GOAWAY to agents, in-flight requests finish within EE_DRAIN_TIMEOUT_SEC).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/packages/cli/bin/ee.js"]
CMD ["control-plane"]
