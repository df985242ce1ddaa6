#!/usr/bin/env bash
# Regenerate probes/cpython_layouts.inc: one `struct cpython_layout`
# initializer per CPython minor version, computed with offsetof()/sizeof()
# against each installed version's own headers (including internal/, hence
# -DPy_BUILD_CORE). Sources: every pyenv build 3.8-3.13 under $(pyenv root)
# (or $PYENV_ROOT, or /root/.pyenv) plus every /usr/include/python3.X.
# When two sources give the same minor they must agree byte for byte, or the
# script fails. When the matching interpreter binary exists, a few numbers are
# also cross-checked against the running interpreter's type objects.
#
# usage: probes/gen-cpython-layouts.sh [OUTPUT]   (default probes/cpython_layouts.inc)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/cpython_layouts.inc}
cc=${CC:-cc}
min_minor=8
max_minor=13

die() { echo "gen-cpython-layouts: $*" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gen-cpython-layouts.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if command -v pyenv >/dev/null 2>&1; then
	pyenv_root=$(pyenv root)
else
	pyenv_root=${PYENV_ROOT:-/root/.pyenv}
fi

# The probe prints the exact header version (PY_VERSION) on line 1, then the
# designated-initializer row for struct cpython_layout.
cat >"$tmp/probe.c" <<'EOF'
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#if PY_MINOR_VERSION <= 10
#include <frameobject.h>
#endif
#if PY_MINOR_VERSION <= 8
#include "internal/pycore_pystate.h"
#else
#include "internal/pycore_runtime.h"
#include "internal/pycore_interp.h"
#endif
#if PY_MINOR_VERSION >= 11
#include "internal/pycore_frame.h"
#endif
#include "internal/pycore_gil.h"

#define F(name, val) printf("\t\t.%s = %d,\n", #name, (int)(val))
#define NONE(name) F(name, -1)

/* state is a bitfield, so offsetof() cannot name it: it follows hash in every
 * supported version; confirm by setting a bit and finding the changed byte. */
static int str_state_offset(void)
{
	PyASCIIObject o;
	const unsigned char *p = (const unsigned char *)&o;
	int off = (int)(offsetof(PyASCIIObject, hash) + sizeof(Py_hash_t));
	size_t i;

	memset(&o, 0, sizeof(o));
	o.state.ascii = 1;
	for (i = 0; i < sizeof(o) && !p[i]; i++)
		;
	if ((int)i < off || (int)i >= off + 4) {
		fprintf(stderr, "PyASCIIObject.state not after hash\n");
		return -2;
	}
	return off;
}

int main(void)
{
	int state = str_state_offset();

	if (state < 0)
		return 1;
	printf("%s\n", PY_VERSION);
	printf("\t{\n\t\t.major = %d, .minor = %d,\n", PY_MAJOR_VERSION,
	       PY_MINOR_VERSION);
	F(rt_interp_head, offsetof(_PyRuntimeState, interpreters.head));
#if PY_MINOR_VERSION <= 11
	F(rt_tss_key, offsetof(_PyRuntimeState, gilstate.autoTSSkey));
	F(rt_gil, offsetof(_PyRuntimeState, ceval.gil));
#else
	F(rt_tss_key, offsetof(_PyRuntimeState, autoTSSkey));
	NONE(rt_gil);
#endif
#if PY_MINOR_VERSION <= 10
	F(interp_tstate_head, offsetof(PyInterpreterState, tstate_head));
#else
	F(interp_tstate_head, offsetof(PyInterpreterState, threads.head));
#endif
#if PY_MINOR_VERSION >= 12
	F(interp_gil_ptr, offsetof(PyInterpreterState, ceval.gil));
#else
	NONE(interp_gil_ptr);
#endif
	F(tstate_next, offsetof(PyThreadState, next));
	F(tstate_interp, offsetof(PyThreadState, interp));
	F(tstate_thread_id, offsetof(PyThreadState, thread_id));
#if PY_MINOR_VERSION >= 11
	F(tstate_native_thread_id, offsetof(PyThreadState, native_thread_id));
#else
	NONE(tstate_native_thread_id);
#endif
#if PY_MINOR_VERSION <= 10
	NONE(tstate_cframe);
	F(tstate_frame, offsetof(PyThreadState, frame));
	F(frame_back, offsetof(PyFrameObject, f_back));
	F(frame_code, offsetof(PyFrameObject, f_code));
	F(frame_pos, offsetof(PyFrameObject, f_lasti));
	NONE(frame_owner);
	NONE(frame_is_entry);
#else
#if PY_MINOR_VERSION <= 12
	F(tstate_cframe, offsetof(PyThreadState, cframe));
	F(tstate_frame, offsetof(_PyCFrame, current_frame));
#else
	NONE(tstate_cframe);
	F(tstate_frame, offsetof(PyThreadState, current_frame));
#endif
	F(frame_back, offsetof(struct _PyInterpreterFrame, previous));
#if PY_MINOR_VERSION <= 12
	F(frame_code, offsetof(struct _PyInterpreterFrame, f_code));
	F(frame_pos, offsetof(struct _PyInterpreterFrame, prev_instr));
#else
	F(frame_code, offsetof(struct _PyInterpreterFrame, f_executable));
	F(frame_pos, offsetof(struct _PyInterpreterFrame, instr_ptr));
#endif
	F(frame_owner, offsetof(struct _PyInterpreterFrame, owner));
#if PY_MINOR_VERSION == 11
	F(frame_is_entry, offsetof(struct _PyInterpreterFrame, is_entry));
#else
	NONE(frame_is_entry);
#endif
#endif
	F(code_argcount, offsetof(PyCodeObject, co_argcount));
	F(code_flags, offsetof(PyCodeObject, co_flags));
	F(code_firstlineno, offsetof(PyCodeObject, co_firstlineno));
	F(code_filename, offsetof(PyCodeObject, co_filename));
	F(code_name, offsetof(PyCodeObject, co_name));
#if PY_MINOR_VERSION >= 11
	F(code_qualname, offsetof(PyCodeObject, co_qualname));
#else
	NONE(code_qualname);
#endif
#if PY_MINOR_VERSION <= 9
	F(code_linetable, offsetof(PyCodeObject, co_lnotab));
#else
	F(code_linetable, offsetof(PyCodeObject, co_linetable));
#endif
#if PY_MINOR_VERSION >= 11
	F(code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
#else
	NONE(code_adaptive);
#endif
	F(object_type, offsetof(PyObject, ob_type));
	F(type_basicsize, offsetof(PyTypeObject, tp_basicsize));
	F(type_name, offsetof(PyTypeObject, tp_name));
	F(str_ascii_data, sizeof(PyASCIIObject));
	F(str_length, offsetof(PyASCIIObject, length));
	F(str_state, state);
	F(bytes_size, offsetof(PyVarObject, ob_size));
	F(bytes_data, offsetof(PyBytesObject, ob_sval));
	F(gil_size, sizeof(struct _gil_runtime_state));
	F(gil_locked, offsetof(struct _gil_runtime_state, locked));
	F(gil_last_holder, offsetof(struct _gil_runtime_state, last_holder));
	/* PyCode_Type.tp_basicsize: the variable part (bytecode) starts here
	 * from 3.11 on, so it is not sizeof(PyCodeObject) there. */
#if PY_MINOR_VERSION >= 11
	F(code_size, offsetof(PyCodeObject, co_code_adaptive));
#else
	F(code_size, sizeof(PyCodeObject));
#endif
	printf("\t},\n");
	return 0;
}
EOF

# Every field of struct cpython_layout must be set by every row: a field the
# probe forgot would silently be 0, which is a plausible offset.
fields=$(sed -n '/^struct cpython_layout {/,/^};/p' "$here/cpython_layout.h" |
	sed 's#/\*.*##' | grep -E '^[[:space:]]*int [a-z_, ]+;' |
	sed -E 's/^[[:space:]]*int //; s/[;,]/ /g' | tr -s ' ' '\n' | grep . | sort)
[ -n "$fields" ] || die "cannot read the fields of struct cpython_layout"

# "include-dir|interpreter-or-empty" entries.
sources=()
for d in "$pyenv_root"/versions/*/include/python3.* /usr/include/python3.*; do
	[ -f "$d/Python.h" ] || continue
	base=${d##*/}
	[[ $base =~ ^python3\.([0-9]+)$ ]] || { echo "skip $d (ABI-flagged build)" >&2; continue; }
	minor=${BASH_REMATCH[1]}
	if ((minor < min_minor || minor > max_minor)); then
		echo "skip $d (3.$minor unsupported)" >&2
		continue
	fi
	if [[ $d == "$pyenv_root"/* ]]; then
		py=${d%/include/*}/bin/python3.$minor
	else
		py=/usr/bin/python3.$minor
	fi
	[ -x "$py" ] || py=
	sources+=("$d|$py")
done
((${#sources[@]})) || die "no CPython 3.$min_minor-3.$max_minor headers found"

declare -A row src
n=0
for s in "${sources[@]}"; do
	d=${s%%|*}
	py=${s#*|}
	n=$((n + 1))
	exe=$tmp/probe$n
	# Debian splits pyconfig.h into a multiarch directory; -I both.
	extra=()
	ma=$($cc -print-multiarch 2>/dev/null || true)
	[ -n "$ma" ] && [ -d "/usr/include/$ma/${d##*/}" ] && extra=(-I"/usr/include/$ma/${d##*/}")
	if ! $cc -std=gnu11 -w -DPy_BUILD_CORE=1 -DPy_BUILD_CORE_MODULE=1 \
		-I"$d" -I"$d/internal" "${extra[@]}" "$tmp/probe.c" -o "$exe" 2>"$tmp/err"; then
		cat "$tmp/err" >&2
		die "probe failed to compile against $d"
	fi
	"$exe" >"$tmp/out$n" || die "probe failed to run for $d"
	ver=$(head -n1 "$tmp/out$n")
	body=$(tail -n +2 "$tmp/out$n")
	got=$(grep -oE '\.[a-z_]+ =' <<<"$body" | sed -E 's/^\.//; s/ =$//' | sort)
	[ "$got" = "$fields" ] ||
		die "$d: probe fields differ from struct cpython_layout:
$(diff <(echo "$fields") <(echo "$got") || true)"
	minor=$(sed -n 's/.*\.minor = \([0-9]*\),.*/\1/p' <<<"$body")
	[ -n "$minor" ] || die "no minor version in probe output for $d"

	# Cross-check against the interpreter when it is installed.
	if [ -n "$py" ]; then
		read -r pyver codesz bytesz < <("$py" -S -c '
import sys
print("%d.%d.%d" % sys.version_info[:3], type((lambda: 0).__code__).__basicsize__, bytes.__basicsize__)')
		[ "$pyver" = "${ver%%[a-z+]*}" ] || die "$py is $pyver but $d says $ver"
		want=$(sed -n 's/.*\.code_size = \(-\?[0-9]*\),.*/\1/p' <<<"$body")
		[ "$want" = "$codesz" ] || die "$d: code_size $want != $py code.__basicsize__ $codesz"
		want=$(sed -n 's/.*\.bytes_data = \(-\?[0-9]*\),.*/\1/p' <<<"$body")
		# bytes.__basicsize__ counts the trailing NUL of ob_sval.
		[ "$((want + 1))" = "$bytesz" ] || die "$d: bytes_data $want != $py bytes.__basicsize__ $bytesz"
	fi

	if [ -n "${row[$minor]+x}" ]; then
		if [ "${row[$minor]}" != "$body" ]; then
			diff <(echo "${row[$minor]}") <(echo "$body") >&2 || true
			die "3.$minor layouts disagree: ${src[$minor]} vs $ver ($d)"
		fi
		src[$minor]+=", $ver ($d)"
	else
		row[$minor]=$body
		src[$minor]="$ver ($d)"
	fi
	echo "3.$minor: $ver from $d${py:+ (checked against $py)}" >&2
done

{
	echo "/* Generated by probes/gen-cpython-layouts.sh -- do not edit."
	echo " * offsetof()/sizeof() compiled with -DPy_BUILD_CORE against:"
	for m in $(printf '%s\n' "${!row[@]}" | sort -n); do
		echo " *   3.$m: ${src[$m]}"
	done
	echo " * Rows are sorted by minor version; -1 = field absent. */"
	for m in $(printf '%s\n' "${!row[@]}" | sort -n); do
		echo "${row[$m]}"
	done
} >"$tmp/inc"
mv "$tmp/inc" "$out"
echo "wrote $out" >&2
