#!/usr/bin/env node
// The build (dist/), through package.json's `imports`: under `--conditions=gatehouse-source`
// (the workspace's tests and dev runs, with a TypeScript loader) `#cli` is the source instead.
await import('#cli')
