#!/bin/sh
# cluster.sh: start/stop a local cluster. Replaced when the node lands.
echo "keel: the node (bin/keel) is not built yet; see README.md and issue 5."
