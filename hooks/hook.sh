#!/bin/sh
# bgrun-managed-hook v1: do not edit; `bgrun hooks uninstall` puts the original back.
# Runs `bgrun hook NAME`, then the hook this one replaced (kept beside it as NAME.bgrun-orig).
b=@BGRUN@
n=@NAME@
o="${0%/*}/$n.bgrun-orig"
if [ ! -x "$o" ]; then
  [ -x "$b" ] && exec "$b" hook "$n" "$@"
  echo "bgrun: $b not found; skipping the $n hook (run \`bgrun hooks uninstall\`)" >&2
  exit 0
fi
s=0
if [ @STDIN@ = 1 ]; then
  i=$(cat; echo .)
  i=${i%.}
  if [ -x "$b" ]; then printf '%s' "$i" | "$b" hook "$n" "$@" || s=$?; fi
  printf '%s' "$i" | "$o" "$@" || exit $?
else
  if [ -x "$b" ]; then "$b" hook "$n" "$@" || s=$?; fi
  "$o" "$@" || exit $?
fi
exit $s
