#!/usr/bin/env bash
# Build the extension with AddressSanitizer + UndefinedBehaviorSanitizer (gcc)
# into build/sanitized/ and run the test suite against it.  PJ2K_SELF_CHECK
# compiles in the C core's cross-checks of fast paths against plain ones.
#   scripts/run_sanitizers.sh [pytest args...]     (default: the whole suite)
#   scripts/run_sanitizers.sh --optimised [...]    the self-checks alone, at
#       -O3 like the release build (build/self-checked/): the sanitized build's
#       -O1 does not vectorise, and a vectorised loop is what the checks are for
# The installed package is left alone: the checked copy comes first on
# PYTHONPATH.  Leak checking is off (CPython itself holds memory at exit).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--optimised" ]; then
  shift
  out=build/self-checked
  cflags="-O3 -std=c11 -fno-trapping-math -ffp-contract=off -DPJ2K_SELF_CHECK"
  preload=""
else
  out=build/sanitized
  cflags="-O1 -g -std=c11 -ffp-contract=off -DPJ2K_SELF_CHECK -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
  preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
fi
rm -rf "$out"
mkdir -p "$out"
cp -r src/progressive_j2k "$out/"
rm -f "$out"/progressive_j2k/*.so "$out"/progressive_j2k/_core.c
PJ2K_CFLAGS="$cflags" \
  python3 setup.py -q build_ext --build-lib "$out" --build-temp "$out/tmp" --force 2>&1 | grep -v -i warning || true
ls "$out"/progressive_j2k/_core*.so >/dev/null
# allocator_may_return_null: an allocation too large for the address space
# returns NULL, as plain malloc's does (numpy then raises MemoryError, which
# tests expect; the C core takes NULL as PJ2K_ERR_NOMEM); ASan would abort
export LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 PYTHONPATH="$PWD/$out"
# make sure the tests see the checked build, not the installed one
python3 -c "import progressive_j2k._core as c, sys; assert '$out' in c.__file__, c.__file__; print('checked build:', c.__file__)"
python3 -m pytest -q -p no:cacheprovider "${@:-tests}"
