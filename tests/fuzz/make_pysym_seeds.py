"""Seed corpus for fuzz_pysym: real code objects copied out of live CPython
interpreters, one image per version, in the fuzzer's input format.

usage: /usr/bin/python3 tests/fuzz/make_pysym_seeds.py OUTDIR [PYTHON...]
       (default interpreters: /usr/bin/python3 and pyenv 3.8-3.13)

Each interpreter runs this file with --dump: it copies the raw bytes of a few
of its own code objects (and of their name, qualname, file name and line
table objects) with ctypes and prints them as hex. The parent lays them out
in one memory image, rewrites the pointers between them to the image's
addresses, and writes the fuzzer input:

  byte 0      pysym layout: index into {3.8 .. 3.13}
  byte 1      line-table decoder version, same indexing
  byte 2      bit 0: check ob_type against PyCode_Type (at the image start)
  bytes 4-7   offset of the code object in the image (little endian)
  bytes 8-11  instruction position
  bytes 12-15 co_firstlineno as the BPF walker would pass it
  bytes 16-   the image, mapped at 0x10000000

so the fuzzer starts from inputs that resolve to a function, a file and a
line through every decoder, instead of having to discover object layouts.
"""
import glob
import json
import os
import re
import struct
import subprocess
import sys

MINORS = [8, 9, 10, 11, 12, 13]
IMAGE_BASE = 0x10000000
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def layouts():
    """{minor: {field: offset}} from probes/cpython_layouts.inc."""
    text = open(os.path.join(REPO, "probes", "cpython_layouts.inc")).read()
    out = {}
    for block in re.findall(r"\{(.*?)\}", text, re.S):
        fields = dict((k, int(v)) for k, v in re.findall(r"\.(\w+)\s*=\s*(-?\d+)", block))
        if fields.get("major") == 3:
            out[fields["minor"]] = fields
    return out


def dump():
    """Runs inside the interpreter being sampled."""
    import ctypes

    def raw(obj, size):
        return ctypes.string_at(id(obj), size).hex()

    def sample_ascii(x):
        total = 0
        for i in range(x):
            total += i * 2
        return total

    class Holder:
        def method_with_a_longer_qualified_name(self, y):
            return [sample_ascii(y) for _ in range(2)]

    def café(z):  # a non-ASCII name: shown as "?"
        return z

    out = []
    for fn in (sample_ascii, Holder.method_with_a_longer_qualified_name, café, dump):
        co = fn.__code__
        minor = sys.version_info[1]
        table = co.co_lnotab if minor <= 9 else co.co_linetable
        code_bytes = len(co.co_code)
        rec = {
            "minor": minor,
            "code": raw(co, type(co).__basicsize__),
            "name": raw(co.co_name, sys.getsizeof(co.co_name)),
            "filename": raw(co.co_filename, sys.getsizeof(co.co_filename)),
            "table": raw(table, sys.getsizeof(table)),
            "firstlineno": co.co_firstlineno,
            # positions: bytes (f_lasti) on 3.8/3.9, code units on 3.10+
            "pos": [code_bytes // 2 & ~1, 0, code_bytes - 2] if minor <= 9
                   else [code_bytes // 4, 0, code_bytes // 2 - 1],
        }
        if minor >= 11:
            rec["qualname"] = raw(co.co_qualname, sys.getsizeof(co.co_qualname))
        out.append(rec)
    print(json.dumps(out))


def interpreters():
    found = ["/usr/bin/python3"]
    for p in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/python3.*"))):
        m = re.search(r"/python3\.(\d+)$", p)
        if m and int(m.group(1)) in MINORS:
            found.append(p)
    return found


def image_build(rec, L):
    """(image bytes, code offset): the type object area first, then the
    code object, then its strings and line table, pointers rewritten."""
    img = bytearray(64)  # "PyCode_Type" lives at the image start
    code_off = len(img)
    code = bytearray.fromhex(rec["code"])
    img += code
    ptrs = {}
    for key, field in (("name", "code_name"), ("qualname", "code_qualname"),
                       ("filename", "code_filename"), ("table", "code_linetable")):
        if key not in rec or L[field] < 0:
            continue
        while len(img) % 16:
            img.append(0)
        ptrs[field] = IMAGE_BASE + len(img)
        img += bytes.fromhex(rec[key])
    struct.pack_into("<Q", img, code_off + L["object_type"], IMAGE_BASE)
    for field, addr in ptrs.items():
        struct.pack_into("<Q", img, code_off + L[field], addr)
    return bytes(img), code_off


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--dump":
        dump()
        return
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    lay = layouts()
    n = 0
    for py in sys.argv[2:] or interpreters():
        res = subprocess.run([py, os.path.abspath(__file__), "--dump"], capture_output=True, text=True)
        if res.returncode != 0:
            print("skipping %s: %s" % (py, res.stderr.strip()[-200:]), file=sys.stderr)
            continue
        for i, rec in enumerate(json.loads(res.stdout)):
            minor = rec["minor"]
            if minor not in lay:
                continue
            img, code_off = image_build(rec, lay[minor])
            idx = MINORS.index(minor)
            for j, pos in enumerate(rec["pos"]):
                hdr = struct.pack("<BBBBIII", idx, idx, 1 if j != 2 else 0, 0, code_off,
                                  pos & 0xffffffff, rec["firstlineno"])
                name = os.path.join(outdir, "seed-3.%d-%s-%d-%d" % (
                    minor, "debian" if py.startswith("/usr/") else "pyenv", i, j))
                with open(name, "wb") as f:
                    f.write(hdr + img)
                n += 1
    print("wrote %d seeds to %s" % (n, outdir))


if __name__ == "__main__":
    main()
