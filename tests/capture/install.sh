#!/bin/bash
# cmake --install puts the program and its manual page where a packager expects them, and
# the installed manual page is the one in docs/ and formats without warnings.
set -uo pipefail
bin=$1 build=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() {
    echo "FAIL: $*" >&2
    fail=1
}
[ -x "$bin" ] || { echo "FAIL: $bin is not built" >&2; exit 1; }
if ! DESTDIR=$tmp cmake --install "$build" --prefix /usr >"$tmp/log" 2>&1; then
    bad "cmake --install: $(tail -3 "$tmp/log")"
fi
[ -x "$tmp/usr/bin/smtpsniff" ] || bad "no usr/bin/smtpsniff installed"
man=$tmp/usr/share/man/man1/smtpsniff.1
if [ ! -f "$man" ]; then
    bad "no manual page installed at usr/share/man/man1/smtpsniff.1"
elif ! cmp -s "$man" "$src/docs/smtpsniff.1"; then
    bad "the installed manual page differs from docs/smtpsniff.1"
fi
if command -v groff >/dev/null && [ -f "$man" ]; then
    warn=$(groff -man -Tutf8 -ww -z "$man" 2>&1)
    [ -z "$warn" ] || bad "groff warns on the manual page: $(echo "$warn" | head -3)"
fi
[ "$fail" -eq 0 ] && echo "install: program and manual page installed"
exit "$fail"
