# syntax=docker/dockerfile:1
# gatehouse-gateway. Build from the repository root (the build context):
#   docker build -f docker/gateway.Dockerfile -t gatehouse-gateway .
# Run: mount a config at /etc/gatehouse/gateway.yaml (see docker/compose/gateway.yaml); set
# REDIS_URL to share the revocation list and the rate limits between instances.
# The build stage compiles the workspace (tsc -b); the image runs the package's dist/ with plain
# node: no TypeScript loader, no sources, no tests (pnpm deploy ships each package's `files`).
# Node 24, the current LTS. Tested on: Node 20 (the test suite's Node, on CI's machine:
# test/docker.test.ts runs this image's build and start commands there, without Docker).
ARG NODE_VERSION=24
ARG PNPM_VERSION=10.34.8

FROM node:${NODE_VERSION}-bookworm-slim AS build
ARG PNPM_VERSION
RUN npm install -g pnpm@${PNPM_VERSION}
WORKDIR /src
# The lockfile alone fills pnpm's store: this layer is rebuilt only when it changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline
# Every package's dist/ (project references; tsconfig.build.json).
RUN pnpm run build
# pnpm 10 deploys from a workspace without injected workspace packages only with --legacy,
# which re-resolves the workspace packages' version ranges: registry metadata may be fetched
# (--prefer-offline, not --offline; the packages themselves come from the fetched store).
# It copies each package's `files` (bin/, dist/): neither sources nor tests.
RUN pnpm --filter @gatehouse/gateway deploy --legacy --prod --prefer-offline /out

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HEALTHCHECK_URL=http://127.0.0.1:8090/healthz
WORKDIR /app
# The code stays root's (read-only to the service).
COPY --from=build /out /app
RUN mkdir -p /etc/gatehouse
USER node
# The public port, then the admin listener's (admin.listen: probes and metrics).
EXPOSE 8080 8090
# Slim images have no curl: Node's fetch. HEALTHCHECK_URL follows a changed listen port
# (compose points it at /readyz so that the entry waits for keys and the revocation list).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.HEALTHCHECK_URL,{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/gatehouse-gateway.js"]
CMD ["--config", "/etc/gatehouse/gateway.yaml"]
