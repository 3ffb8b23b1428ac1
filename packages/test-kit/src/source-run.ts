/**
 * How a test runs a workspace bin or script from its TypeScript sources, as tap runs the test
 * files (package.json, `tap.node-arg`): the `gatehouse-source` export condition picks each
 * package's `src/*.ts` over its build (`dist/`, which a test never needs), and tsx loads them.
 *
 *   spawn(process.execPath, [...SOURCE_NODE_ARGS, 'packages/gateway/bin/gatehouse-gateway.js', ...])
 */

/** The export and import condition under which the packages resolve to their sources. */
export const SOURCE_CONDITION = 'gatehouse-source'

/** `node` flags before the script: the source condition, and tsx (resolved from here, so any cwd works). */
export const SOURCE_NODE_ARGS: readonly string[] = [`--conditions=${SOURCE_CONDITION}`, '--import', import.meta.resolve('tsx')]
