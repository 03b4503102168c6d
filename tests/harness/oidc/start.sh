#!/bin/sh
# start.sh MODULES_DIR PORTFILE SECRET: the test OAuth server (server.mjs), in
# the foreground, its packages installed as ../node_start.sh says.
here=$(cd "$(dirname "$0")" && pwd)
exec /bin/sh "$here/../node_start.sh" "$here" "$@"
