#!/bin/sh
# fuzz/deps.sh: install what the fuzz targets need (make test never needs it).
#   sh fuzz/deps.sh libfuzzer   clang + the libFuzzer runtime + llvm tools
#   sh fuzz/deps.sh afl         AFL++ (afl-clang-fast)
# Installs through ci/deps.sh: as root with apt-get, otherwise it prints the
# one command to run and fails.
set -eu
cd "$(dirname "$0")/.."
case "${1:-libfuzzer}" in
libfuzzer) exec sh ci/deps.sh clang libclang-rt-14-dev llvm ;; # libclang_rt.fuzzer-*.a lives in libclang-rt-14-dev
afl) exec sh ci/deps.sh clang afl++ ;;
*) echo "usage: fuzz/deps.sh libfuzzer|afl" >&2; exit 2 ;;
esac
