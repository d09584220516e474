#!/bin/sh
# fuzz/deps.sh: install what the fuzz targets need, like ci/deps.sh does for
# the build (make test never needs these).
#   sh fuzz/deps.sh libfuzzer   clang + the libFuzzer runtime + llvm tools
#   sh fuzz/deps.sh afl         AFL++ (afl-clang-fast)
# As root, installs what is missing with apt-get; otherwise prints the one
# command to run and fails.
set -eu
case "${1:-libfuzzer}" in
libfuzzer) PKGS="clang libclang-rt-14-dev llvm" ;; # libclang_rt.fuzzer-*.a lives in libclang-rt-14-dev
afl) PKGS="clang afl++" ;;
*) echo "usage: fuzz/deps.sh libfuzzer|afl" >&2; exit 2 ;;
esac

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
	echo "fuzz deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq $missing >/dev/null
	echo "fuzz deps: installed"
else
	echo "fuzz deps: missing packages:$missing" >&2
	echo "fuzz deps: run: sudo apt-get install -y$missing" >&2
	exit 1
fi
