# syntax=docker/dockerfile:1
# The node image: what runs inside a node's TD beside the user's workloads. Target `agent` (default) runs
# `ee agent` as the unprivileged `node` user; target `launcher` runs `ee node run`, the node launcher, with
# podman, runc and slirp4netns for its container runtime (packages/launcher): podman inside a container needs
# that container privileged (or run the launcher on the TD's own system, systemd/easyenclave-launcher.service).
# Build from the repository root:
#   docker build -f deploy/node.Dockerfile --target agent -t easyenclave/agent .
#   docker build -f deploy/node.Dockerfile --target launcher -t easyenclave/launcher .
# An agent on a TDX host needs the configfs-tsm report directory (EE_TSM_PATH, /sys/kernel/config/tsm/report)
# mounted read-write; the tunnel is dialled out (EE_CONTROL_WS, wss:// in production), no port is published.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages ./packages
# The same steps as control-plane.Dockerfile's build stage (the CLI references every package, the launcher
# too), so a builder with both images shares its layers and compiles better-sqlite3 once.
RUN npm ci --no-audit --no-fund \
 && npx tsc -b packages/cli \
 && npm prune --omit=dev --no-audit --no-fund
RUN mkdir -p /out/packages \
 && for p in packages/*; do mkdir -p "/out/$p" && cp -r "$p/package.json" "$p/dist" "/out/$p/"; done \
 && cp -r packages/cli/bin /out/packages/cli/ \
 && cp -r package.json node_modules /out/ \
 && cd /out/node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node . && rm -rf build deps src \
 && mkdir -p build/Release && mv better_sqlite3.node build/Release/

FROM ${NODE_IMAGE} AS agent
ENV NODE_ENV=production \
    EE_AGENT_STATE_DIR=/var/lib/easyenclave/agent
WORKDIR /app
COPY --from=build /out/ ./
RUN mkdir -p /var/lib/easyenclave/agent && chown -R node:node /var/lib/easyenclave
USER node
VOLUME /var/lib/easyenclave
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/packages/cli/bin/ee.js"]
CMD ["agent"]

FROM agent AS launcher
USER root
# The launcher drives podman through its command line (docs/workloads.md); runc and slirp4netns as in CI.
RUN apt-get update \
 && apt-get install -y --no-install-recommends podman runc slirp4netns \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/easyenclave/launcher && chown -R node:node /var/lib/easyenclave
ENV EE_LAUNCHER_STATE_DIR=/var/lib/easyenclave/launcher
USER node
CMD ["node", "run"]
