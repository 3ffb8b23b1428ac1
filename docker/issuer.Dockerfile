# syntax=docker/dockerfile:1
# gatehouse-issuer. Build from the repository root (the build context):
#   docker build -f docker/issuer.Dockerfile -t gatehouse-issuer .
# Run: mount a config at /etc/gatehouse/issuer.yaml (see docker/compose/issuer.yaml), and
# either set REDIS_URL or keep /var/lib/gatehouse/issuer (the signing keys) on a volume.
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
RUN pnpm --filter @gatehouse/issuer deploy --legacy --prod --prefer-offline /out

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HEALTHCHECK_URL=http://127.0.0.1:4090/healthz
WORKDIR /app
# The code stays root's (read-only to the service); only the data directory is the node user's.
COPY --from=build /out /app
RUN mkdir -p /var/lib/gatehouse/issuer /etc/gatehouse \
 && chown node:node /var/lib/gatehouse/issuer \
 && chmod 0700 /var/lib/gatehouse/issuer
USER node
# The public port, then the admin listener's (admin.listen: probes and metrics).
EXPOSE 4000 4090
# Slim images have no curl: Node's fetch. HEALTHCHECK_URL follows a changed listen port
# (compose points it at /readyz so that depends_on waits for the signing keys).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.HEALTHCHECK_URL,{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/gatehouse-issuer.js"]
CMD ["--config", "/etc/gatehouse/issuer.yaml"]
