#!/bin/sh
# deps.sh: make sure Debian packages are installed.
#   sh ci/deps.sh            keel's build dependencies (make, make test, make run)
#   sh ci/deps.sh PKG...     the named packages (fuzz/deps.sh uses this)
# As root, installs what is missing with apt-get; otherwise prints the one
# command to run and fails.
set -eu
PKGS=${*:-libuv1-dev libprotobuf-c-dev protobuf-c-compiler libxxhash-dev liblmdb-dev pkg-config}

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq $missing >/dev/null
	echo "deps: installed"
else
	echo "deps: missing packages:$missing" >&2
	echo "deps: run: sudo apt-get install -y$missing" >&2
	exit 1
fi
