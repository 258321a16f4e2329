#!/bin/sh
# check_exports.sh LIBINSTANTSTYLE.SO INSTANTSTYLE.H
# The shared library must export exactly the functions the public header declares: an internal
# symbol (is_dnn_*, is_k_*, is_st_*, is_scratch*, ...) leaking out would become API by accident, and
# a declared function missing from the library breaks programs at link time. Also every function
# declaration in the header must carry IS_API (else it would be hidden in the shared library).
set -eu
lib=$1
header=$2
[ -f "$lib" ] || { echo "FAIL: $lib not found (build the instantstyle_shared target)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Defined dynamic symbols, minus the linker's own markers.
nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' |
  grep -v -x -e _init -e _fini -e _edata -e _end -e __bss_start | sort -u > "$tmp/exported"

# Top-level declarations: column-0 lines with "(" that are not typedefs, preprocessor lines,
# comments or braces. Their name is the last identifier before the first "(".
grep -v -E '^(typedef|#|/\*|[[:space:]]|\}|\{|extern)' "$header" | grep '(' > "$tmp/decl_lines" || true
grep -v '^IS_API ' "$tmp/decl_lines" > "$tmp/unmarked" || true
sed -E 's/\(.*//; s/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*$/\1/' "$tmp/decl_lines" | sort -u > "$tmp/declared"

status=0
if [ -s "$tmp/unmarked" ]; then
  echo "FAIL: declarations in $header without IS_API:"
  sed 's/^/  /' "$tmp/unmarked"
  status=1
fi
comm -23 "$tmp/exported" "$tmp/declared" > "$tmp/extra"
if [ -s "$tmp/extra" ]; then
  echo "FAIL: $lib exports symbols that $header does not declare (internal symbols must stay hidden):"
  sed 's/^/  /' "$tmp/extra"
  status=1
fi
comm -13 "$tmp/exported" "$tmp/declared" > "$tmp/missing"
if [ -s "$tmp/missing" ]; then
  echo "FAIL: $header declares functions that $lib does not export:"
  sed 's/^/  /' "$tmp/missing"
  status=1
fi
if [ "$status" -eq 0 ]; then
  echo "ok: $(wc -l < "$tmp/exported") exported symbols, all declared in $header with IS_API, none missing"
fi
exit "$status"
