# syntax=docker/dockerfile:1.7
# The worker image: Node 20 running the TypeScript sources through tsx (no build step: the same files
# the tests run). The same image runs the Upstash-REST gateway (infra/gateway/main.ts) and the
# `bionic` CLI (e.g. `node bin/bionic.mjs migrate` as a one-shot job).
#
#   docker build -f infra/docker/worker.Dockerfile -t bionicpro/worker .
#
# Build context: the repository root (infra/docker/worker.Dockerfile.dockerignore keeps it small).
ARG NODE_VERSION=20.19

# ── dependencies: production packages only, install scripts included (chDB's library) ──────────
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# `npm install` with the lockfile installs exactly its versions (`npm ci` refuses this lockfile:
# see infra/dev/setup.sh).
RUN npm install --omit=dev --no-audit --no-fund --loglevel=error \
 && npm cache clean --force

# ── runtime ───────────────────────────────────────────────────────────────────────────────────────
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    WORKER_HOST=0.0.0.0 \
    WORKER_PORT=8081
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY shared ./shared
COPY router ./router
COPY edge ./edge
COPY workers ./workers
COPY infra/migrations ./infra/migrations
COPY infra/clickhouse ./infra/clickhouse
COPY infra/kafka ./infra/kafka
COPY infra/gateway ./infra/gateway
COPY bin ./bin
# The unprivileged user of the official image (uid 1000); nothing here needs root.
USER node
EXPOSE 8081
# Liveness only: /ready (dependencies) is for load balancers and Kubernetes readiness.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.WORKER_PORT||8081)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM reaches Node directly (exec form): the worker drains and stops within SHUTDOWN_GRACE_MS.
CMD ["node", "--import", "tsx", "workers/main.ts"]
