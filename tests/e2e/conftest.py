"""End-to-end tests for loopspy: attach to real Python asyncio programs.

Run (as root, after `make`):  /usr/bin/python3 -m pytest tests/e2e

Environment:
  LOOPSPY                  path of the binary (default <repo>/build/loopspy)
  LOOPSPY_PYTHONS          colon-separated absolute interpreter paths
                           (default: /usr/bin/python3 + pyenv 3.8-3.13 builds)
  LOOPSPY_RECORD_SECONDS   `record -d` for each test (default 4)
  LOOPSPY_SETTLE_SECONDS   wait after READY before attaching (default 1;
                           test_attach_already_running always waits 2)
  LOOPSPY_RECORD_ARGS      extra arguments for every `loopspy record`
"""
import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Optional, Tuple

import pytest

from loopspy_e2e import LOOPSPY

DEBIAN_PYTHON = "/usr/bin/python3"
MINORS = range(8, 14)  # 3.8 .. 3.13


@dataclass
class Interp:
    path: str
    version: Optional[Tuple[int, int, int]]  # None: not runnable
    origin: str  # "debian", "pyenv", "custom"
    id: str = ""
    error: str = ""

    @property
    def short(self):
        return "%d.%d" % self.version[:2] if self.version else "?"


def _version(path):
    try:
        out = subprocess.run(
            [path, "-c", "import sys; print('%d %d %d' % sys.version_info[:3])"],
            capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if out.returncode != 0:
        return None, out.stderr.strip()[-500:]
    return tuple(int(x) for x in out.stdout.split()), ""


def _pyenv_root():
    if os.environ.get("PYENV_ROOT"):
        return os.environ["PYENV_ROOT"]
    exe = shutil.which("pyenv")
    if exe:
        try:
            out = subprocess.run([exe, "root"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return "/root/.pyenv"


def _make(path, origin):
    version, error = _version(path)
    return Interp(path, version, origin, error=error)


def discover_interpreters():
    override = os.environ.get("LOOPSPY_PYTHONS")
    if override:
        interps = []
        root = os.path.realpath(_pyenv_root())
        for path in filter(None, override.split(":")):
            if not os.path.isabs(path):
                raise pytest.UsageError("LOOPSPY_PYTHONS entries must be absolute paths: %r" % path)
            if path.startswith("/usr/bin/"):
                origin = "debian"
            elif os.path.realpath(path).startswith(root + "/versions/"):
                origin = "pyenv"
            else:
                origin = "custom"
            interps.append(_make(path, origin))
    else:
        interps = [_make(DEBIAN_PYTHON, "debian")]
        found = []
        for path in glob.glob(os.path.join(_pyenv_root(), "versions", "*", "bin", "python3.*")):
            m = re.search(r"/python3\.(\d+)$", path)
            if m and int(m.group(1)) in MINORS and os.access(path, os.X_OK):
                found.append(path)
        seen = set()
        for path in sorted(found):
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            interp = _make(path, "pyenv")
            if interp.version and interp.version[:2] in [(3, m) for m in MINORS]:
                interps.append(interp)
        interps.sort(key=lambda i: (i.origin != "debian", i.version or (0,)))
    # Readable, unique ids: debian-3.11, pyenv-3.8 (pyenv-3.12.1 if ambiguous).
    short_ids = {}
    for i in interps:
        short_ids.setdefault("%s-%s" % (i.origin, i.short), []).append(i)
    for sid, group in short_ids.items():
        for n, i in enumerate(group):
            if len(group) == 1:
                i.id = sid
            elif i.version:
                i.id = "%s-%s" % (i.origin, ".".join(map(str, i.version)))
            else:
                i.id = "%s-%d" % (sid, n)
    return interps


_INTERPS = None


def interpreters():
    global _INTERPS
    if _INTERPS is None:
        _INTERPS = discover_interpreters()
    return _INTERPS


def pytest_generate_tests(metafunc):
    if "interp" in metafunc.fixturenames:
        interps = interpreters()
        metafunc.parametrize("interp", interps, ids=[i.id for i in interps], indirect=True)


@pytest.fixture
def interp(request):
    i = request.param
    if i.version is None:
        if i.origin == "debian" and i.path == DEBIAN_PYTHON:
            pytest.fail("Debian interpreter %s is missing or broken: %s" % (i.path, i.error), pytrace=False)
        pytest.fail("interpreter %s is not runnable: %s" % (i.path, i.error), pytrace=False)
    return i


_IMPORTABLE = {}


def can_import(interp, module):
    key = (interp.path, module)
    if key not in _IMPORTABLE:
        res = subprocess.run([interp.path, "-c", "import " + module], capture_output=True, timeout=30)
        _IMPORTABLE[key] = res.returncode == 0
    return _IMPORTABLE[key]


def _skip_reason():
    if os.geteuid() != 0:
        return "loopspy e2e tests need root (eBPF); run them as root"
    if not (LOOPSPY.is_file() and os.access(str(LOOPSPY), os.X_OK)):
        return "loopspy binary not found at %s (run `make` first or set LOOPSPY=...)" % LOOPSPY
    return None


def pytest_collection_modifyitems(config, items):
    reason = _skip_reason()
    if not reason:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    mark = pytest.mark.skip(reason=reason)
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(mark)


def pytest_report_header(config):
    lines = ["loopspy: %s%s" % (LOOPSPY, "" if LOOPSPY.exists() else " (missing)")]
    for i in interpreters():
        lines.append("python %-14s %s %s" % (i.id, i.path, "" if i.version else "(NOT RUNNABLE: %s)" % i.error))
    return lines
