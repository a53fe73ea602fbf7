#!/usr/bin/env bash
# Builds deploy/control-plane.Dockerfile and deploy/node.Dockerfile (targets agent and launcher) with podman and
# runs them: the control plane answers /health on a loopback-published port as a non-root user, and an agent
# from the agent image registers to it over the tunnel and serves its app. Run from anywhere, as root:
#   deploy/check-images.sh            (the opt-in test test/src/deploy/images.test.ts runs it: EE_TEST_IMAGES=1)
# Offline from image registries: the Dockerfiles' base (node:20-bookworm-slim) is replaced by a stand-in built
# here with debootstrap (Debian bookworm, minbase) plus this machine's own Node 20 (node, npm, headers), the
# `node` user (uid 1000) as in the official image, this machine's CA bundle and npm's cafile/nodedir settings
# (node-gyp builds better-sqlite3 against the local headers). It is imported once as $EE_CHECK_BASE_IMAGE and
# passed as --build-arg NODE_IMAGE. The builds still reach the npm registry and Debian's packages (npm ci,
# apt-get) through the host network. Prints one line `RESULT {json}` with build times and image sizes.
# Settings: EE_CHECK_BASE_IMAGE, EE_CHECK_REBUILD_BASE=1 (rebuild the stand-in), EE_CHECK_NO_CACHE=1 (build
# without podman's layer cache, for cold build times), EE_CHECK_LAUNCHER=0 (skip
# the launcher target), EE_CHECK_PG=0 (skip the run on this machine's PostgreSQL), EE_CHECK_PORT (host port for
# the control plane, default 18788; the PostgreSQL run uses the next two), and the podman
# arguments of the tests: EE_TEST_CONTAINER_GLOBAL_ARGS, EE_TEST_CONTAINER_RUN_ARGS.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BASE=${EE_CHECK_BASE_IMAGE:-localhost/ee-standin/node:20-bookworm-slim}
TAG=check
PORT=${EE_CHECK_PORT:-18788}
# Word-split on purpose: these are argument lists.
read -r -a G <<<"${EE_TEST_CONTAINER_GLOBAL_ARGS:---runtime runc}"
CACHE=()
[ "${EE_CHECK_NO_CACHE:-0}" = 1 ] && CACHE=(--no-cache)
read -r -a R <<<"${EE_TEST_CONTAINER_RUN_ARGS:---ulimit nofile=1024:1024 --ulimit nproc=1000:1000}"
ADMIN_TOKEN=check-images-admin-token-0123456789
CP=ee-check-cp-$$
AGENT=ee-check-agent-$$
BODY=$(mktemp /tmp/ee-check-body.XXXXXX)
HEALTH_WAIT_S=60
REGISTER_WAIT_S=90

log() { echo "check-images: $*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}
pm() { podman "${G[@]}" "$@"; }
now_s() { date +%s; }

cleanup() {
  pm rm -f -i -t 5 "$AGENT" "$CP" "$CP-pg" >/dev/null 2>&1 || true
  if [ -n "${ROOTFS:-}" ]; then rm -rf "$ROOTFS"; fi
  rm -f "$BODY"
  if [ -n "${PGDB:-}" ]; then psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $PGDB" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# --- 1. the stand-in base image -------------------------------------------------------------------------
make_base() {
  command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
  local node_bin npm_dir
  node_bin=$(readlink -f "$(command -v node)")
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [ "$(node -p 'process.versions.node.split(".")[0]')" = 20 ] || die "this machine's node is not Node 20"
  [ -d /usr/include/node ] || die "no Node headers in /usr/include/node (node-gyp needs them offline)"
  ROOTFS=$(mktemp -d /tmp/ee-check-rootfs.XXXXXX)
  log "debootstrap bookworm (minbase) into $ROOTFS"
  debootstrap --variant=minbase bookworm "$ROOTFS" >"$ROOTFS.log" 2>&1 || die "debootstrap failed: $ROOTFS.log"
  install -D -m 0755 "$node_bin" "$ROOTFS/usr/local/bin/node"
  mkdir -p "$ROOTFS/usr/local/lib/node_modules" "$ROOTFS/usr/local/include" "$ROOTFS/usr/local/etc"
  cp -a "$npm_dir" "$ROOTFS/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
  cp -a /usr/include/node "$ROOTFS/usr/local/include/node"
  # This machine's trust store (its egress may re-sign TLS) and where node-gyp finds the headers.
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nnodedir=/usr/local\n' >"$ROOTFS/usr/local/etc/npmrc"
  chroot "$ROOTFS" /bin/sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
  chroot "$ROOTFS" /usr/local/bin/node -e 'process.exit(0)' || die "node does not run in the stand-in rootfs"
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS.log"
  tar -C "$ROOTFS" -c . | pm import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' - "$BASE" >/dev/null
  rm -rf "$ROOTFS"
  ROOTFS=
}

# wait_200 <seconds> <url> <container>: polls until the URL answers 200 (its body in $BODY), or shows the
# container's log and fails.
wait_200() {
  local code=000
  for _ in $(seq "$1"); do
    code=$(curl -s -o "$BODY" -w '%{http_code}' "$2" || true)
    [ "$code" = 200 ] && return 0
    sleep 1
  done
  pm logs "$3" >&2 || true
  die "$2 answered $code: $(cat "$BODY" 2>/dev/null)"
}

size_mb() { pm image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.1f", $1 / 1e6 }'; }

build() { # <name> <dockerfile> [--target t]
  local name=$1 file=$2 t0
  shift 2
  t0=$(now_s)
  log "building $name ($file $*)"
  # docker format keeps HEALTHCHECK (OCI drops it); the base exists only locally.
  pm build --format docker --pull=never --network host "${CACHE[@]}" "${R[@]}" --build-arg "NODE_IMAGE=$BASE" \
    -f "$REPO/$file" "$@" -t "localhost/easyenclave/$name:$TAG" "$REPO" >"/tmp/ee-check-build-$name.log" 2>&1 ||
    die "build of $name failed: /tmp/ee-check-build-$name.log"
  echo $(($(now_s) - t0))
}

base_s=0
if [ "${EE_CHECK_REBUILD_BASE:-0}" = 1 ] || ! pm image exists "$BASE"; then
  t0=$(now_s)
  make_base
  base_s=$(($(now_s) - t0))
fi
cp_s=$(build control-plane deploy/control-plane.Dockerfile)
agent_s=$(build agent deploy/node.Dockerfile --target agent)
launcher_s=0
if [ "${EE_CHECK_LAUNCHER:-1}" = 1 ]; then
  launcher_s=$(build launcher deploy/node.Dockerfile --target launcher)
  pm run --rm "${R[@]}" --entrypoint podman localhost/easyenclave/launcher:$TAG --version >/dev/null ||
    die "podman does not run in the launcher image"
fi

# --- 2. run the control plane: SQLite (the image's default), sandbox attestation, loopback port ---------
log "running the control plane on 127.0.0.1:$PORT"
# The image's HEALTHCHECK is run once by hand below (its timer would need systemd).
pm run -d --name "$CP" "${R[@]}" --health-interval disable --network slirp4netns -p "127.0.0.1:$PORT:8088" \
  -e EE_CONTROL_BIND=0.0.0.0 -e EE_PROXY_BIND=0.0.0.0 -e EE_ADMIN_TOKEN=$ADMIN_TOKEN \
  localhost/easyenclave/control-plane:$TAG >/dev/null
wait_200 "$HEALTH_WAIT_S" "http://127.0.0.1:$PORT/health" "$CP"
health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")
pm healthcheck run "$CP" >/dev/null || die "the image's HEALTHCHECK (GET /ready) fails"
cp_uid=$(pm exec "$CP" node -p 'process.getuid()')
cp_user=$(pm exec "$CP" node -p 'require("os").userInfo().username')
[ "$cp_uid" != 0 ] || die "the control plane runs as root"
db=$(pm exec "$CP" sh -c 'ls /var/lib/easyenclave/control-plane.db && stat -c %U /var/lib/easyenclave/control-plane.db')

# --- 3. an agent from the agent image registers over the tunnel; its backend is the control plane itself --
log "running an agent against ws://127.0.0.1:$PORT/v1/tunnel"
pm run -d --name "$AGENT" "${R[@]}" --network host \
  -e EE_CONTROL_WS="ws://127.0.0.1:$PORT/v1/tunnel" -e EE_BACKEND_URL="http://127.0.0.1:$PORT" \
  -e EE_APP_NAME=check-images -e EE_REPO=easyenclave/check-images -e EE_RELEASE_TAG=v0.0.1 \
  -e EE_NETWORK=sandbox-1 -e EE_HEALTH_INTERVAL_SEC=1 \
  localhost/easyenclave/agent:$TAG >/dev/null
agent_uid=$(pm exec "$AGENT" node -p 'process.getuid()')
[ "$agent_uid" != 0 ] || die "the agent runs as root"
wait_200 "$REGISTER_WAIT_S" "http://127.0.0.1:$PORT/v1/resolve/check-images" "$AGENT"
# Through the tunnel: the proxy route reaches the agent's backend (the control plane's /health).
proxied=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/proxy/check-images/health" || true)
[ "$proxied" = 200 ] || die "/v1/proxy/check-images/health answered $proxied"
# The agent keeps its generated id in the image's state volume, as the node user.
agent_state=$(pm exec "$AGENT" stat -c %U /var/lib/easyenclave/agent/check-images.agent-id)
agents=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).agents' "$BODY")

# --- 4. a clean stop: SIGTERM drains and exits 0 ---------------------------------------------------------
pm stop -t 30 "$AGENT" >/dev/null
pm stop -t 30 "$CP" >/dev/null
cp_exit=$(pm inspect --format '{{.State.ExitCode}}' "$CP")
[ "$cp_exit" = 0 ] || die "the control plane exited $cp_exit on SIGTERM"

# --- 5. the same image on PostgreSQL (this machine's, 127.0.0.1:5432 as postgres), when it is up ----------
pg=skipped
if [ "${EE_CHECK_PG:-1}" = 1 ] && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  PGDB=ee_check_images_$$
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $PGDB" >/dev/null
  log "running the control plane on PostgreSQL ($PGDB)"
  pm run -d --name "$CP-pg" "${R[@]}" --health-interval disable --network host \
    -e EE_CONTROL_PORT=$((PORT + 1)) -e EE_PROXY_PORT=$((PORT + 2)) \
    -e EE_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$PGDB" -e EE_ADMIN_TOKEN=$ADMIN_TOKEN \
    localhost/easyenclave/control-plane:$TAG >/dev/null
  wait_200 "$HEALTH_WAIT_S" "http://127.0.0.1:$((PORT + 1))/ready" "$CP-pg"
  tables=$(psql -tA -h 127.0.0.1 -U postgres -d "$PGDB" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
  [ "$tables" -gt 0 ] || die "the control plane made no tables in $PGDB"
  pm stop -t 30 "$CP-pg" >/dev/null
  pg_exit=$(pm inspect --format '{{.State.ExitCode}}' "$CP-pg")
  pm rm -f "$CP-pg" >/dev/null
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $PGDB" >/dev/null
  PGDB=
  [ "$pg_exit" = 0 ] || die "the control plane on PostgreSQL exited $pg_exit on SIGTERM"
  pg="ready, $tables tables"
fi

launcher_mb=null
[ "${EE_CHECK_LAUNCHER:-1}" = 1 ] && launcher_mb=$(size_mb localhost/easyenclave/launcher:$TAG)
printf 'RESULT {"base_image":"%s","base_build_s":%s,"control_plane_build_s":%s,"agent_build_s":%s,"launcher_build_s":%s,"base_mb":%s,"control_plane_mb":%s,"agent_mb":%s,"launcher_mb":%s,"health":%s,"control_plane_uid":%s,"control_plane_user":"%s","db":"%s","agent_uid":%s,"agent_state_owner":"%s","agents_routable":%s,"proxied":%s,"control_plane_exit":%s,"postgres":"%s"}\n' \
  "$BASE" "$base_s" "$cp_s" "$agent_s" "$launcher_s" "$(size_mb "$BASE")" \
  "$(size_mb localhost/easyenclave/control-plane:$TAG)" "$(size_mb localhost/easyenclave/agent:$TAG)" \
  "$launcher_mb" "$health" "$cp_uid" "$cp_user" "$(echo "$db" | tr '\n' ' ' | sed 's/ $//')" "$agent_uid" \
  "$agent_state" "$agents" "$proxied" "$cp_exit" "$pg"
