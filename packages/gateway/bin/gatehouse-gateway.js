#!/bin/sh
':' // ; f=; case "${GATEHOUSE_SINGLE_THREADED_GC:-auto}" in 1|true|yes) f=1;; 0|false|no) ;; *) [ "$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null)" = 1 ] && f=1;; esac; [ -n "$f" ] && exec node --single-threaded-gc "$0" "$@"; exec node "$0" "$@"
// Run as a program (the installed bin, npx), the line above is a shell
// script that starts node on this file; to node, it is a string and a comment. On one CPU (a
// machine, a CPU set: taskset, Docker's --cpuset-cpus) it adds --single-threaded-gc: V8's
// concurrent marking threads can then only take turns with the event loop, which stalled
// requests for up to 70 ms per major GC in the gateway's benchmark, against about 20 ms with
// the marking done in steps on the main thread (docs/operations.md, "One CPU").
// GATEHOUSE_SINGLE_THREADED_GC=1 (true, yes) or 0 (false, no) decides instead: a CPU quota,
// which nproc does not see. Any other value, or none, leaves it to nproc (without the OpenMP
// variables, which would make it print their thread count instead of the CPUs).
// `node bin/gatehouse-gateway.js` skips all this: node's flags are then the caller's.
//
// The build (dist/), through package.json's `imports`: under `--conditions=gatehouse-source`
// (the workspace's tests and dev runs, with a TypeScript loader) `#cli` is the source instead.
await import('#cli')
