#!/usr/bin/env bash
# Generate line-table fixtures for tests/unit/test_pyline.c, one file per
# interpreter found: Debian's /usr/bin/python3 always, pyenv 3.8-3.13 when
# present. Then run the test with LOOPSPY_FIXTURES=OUTDIR.
#
# usage: tests/unit/run-pyline-fixtures.sh OUTDIR
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
outdir=$1
here=$(cd "$(dirname "$0")" && pwd)
dump=$here/pyline_dump.py
mkdir -p "$outdir"

if command -v pyenv >/dev/null 2>&1; then
	pyenv_root=$(pyenv root)
else
	pyenv_root=${PYENV_ROOT:-/root/.pyenv}
fi

# "label path" pairs; absolute paths only, `python3` on PATH may be a shim.
interps=("debian /usr/bin/python3")
for m in 8 9 10 11 12 13; do
	found=
	for py in "$pyenv_root"/versions/3."$m".*/bin/python3."$m"; do
		[ -x "$py" ] || continue
		v=${py#"$pyenv_root"/versions/}
		interps+=("pyenv-${v%%/*} $py")
		found=1
	done
	[ -n "$found" ] || echo "skip: no pyenv 3.$m under $pyenv_root" >&2
done

n=0
for entry in "${interps[@]}"; do
	label=${entry%% *}
	py=${entry#* }
	if [ ! -x "$py" ]; then
		echo "skip: $py not found" >&2
		continue
	fi
	# -I: ignore the environment and user site, so only the stdlib is seen.
	"$py" -I "$dump" "$outdir/pyline-$label.txt"
	n=$((n + 1))
done
((n)) || { echo "no interpreter found" >&2; exit 1; }
echo "$n fixture files in $outdir" >&2
