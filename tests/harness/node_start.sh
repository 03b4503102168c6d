#!/bin/sh
# node_start.sh HARNESS_DIR MODULES_DIR PORTFILE ARG: runs HARNESS_DIR's
# test server (server.mjs PORTFILE ARG) with node in the foreground (exec:
# the caller's child is node itself). Its npm packages are installed once
# into MODULES_DIR (under the build tree, never the source tree) with
# `npm ci`, exactly as HARNESS_DIR/package-lock.json pins them, and again
# only when the lock file changes. OB_WATCH_PID and OB_MAX_LIFETIME_S: see
# the server.mjs files.
set -eu
here=$1
mods=$2
portfile=$3
arg=$4
mkdir -p "$mods"
(
        flock 9
        if ! cmp -s "$here/package-lock.json" "$mods/.installed-lock" || [ ! -d "$mods/node_modules" ]; then
                rm -f "$mods/.installed-lock"
                cp "$here/package.json" "$here/package-lock.json" "$mods/"
                (cd "$mods" && npm ci --no-audit --no-fund --loglevel=error >&2)
                cp "$here/package-lock.json" "$mods/.installed-lock"
        fi
        # ESM imports resolve beside the importing file: the server runs from there.
        cp "$here/server.mjs" "$mods/server.mjs.tmp"
        mv "$mods/server.mjs.tmp" "$mods/server.mjs"
) 9>"$mods/.lock"
exec node "$mods/server.mjs" "$portfile" "$arg"
