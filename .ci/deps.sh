#!/usr/bin/env bash
# Installs the Debian packages loopspy needs to build, test and benchmark.
# Idempotent: apt-get runs only when something is missing.
set -euo pipefail
pkgs=(
  make gcc clang llvm pkg-config        # build; clang compiles the BPF side
  libbpf-dev bpftool                    # BPF loader library, skeleton generator
  libelf-dev zlib1g-dev                 # libbpf's and our ELF symbol reading
  libcjson-dev                          # JSON report writer/reader
  libmicrohttpd-dev                     # loopspy agent: HTTP server for /metrics
  libncurses-dev                        # loopspy top
  libcmocka-dev                         # unit tests
  python3 python3-pytest                # end-to-end tests
  prometheus                            # end-to-end test of loopspy agent
  python3-aiohttp python3-uvloop        # test targets (uvloop, aiohttp)
  chromium                              # loads the HTML report headless in tests
  libclang-rt-14-dev                    # sanitizer/fuzzer runtimes
  valgrind tmux wrk hyperfine bpftrace strace procps  # tests and benchmarks
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "loopspy: cannot install packages: ${missing[*]}: not root" >&2
  echo "hint: sudo make deps" >&2
  exit 1
fi
echo "loopspy: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
