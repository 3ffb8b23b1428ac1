#!/usr/bin/env node
// The build (dist/), through package.json's `imports`: under `--conditions=gatehouse-source`
// (the workspace's tests and dev runs, with a TypeScript loader) `#client-app-cli` is the source instead.
await import('#client-app-cli')
