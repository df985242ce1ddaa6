# loopspy — one Makefile. `make V=1` shows the commands.
# SANITIZE=1 builds user space with ASan+UBSan into build/san (its own
# directory, so both builds coexist); `make test SANITIZE=1` runs the whole
# suite with it.
ifneq ($(origin OUT),command line)
OUT       := $(if $(filter 1,$(SANITIZE)),build/san,build)
endif
CC        ?= gcc
CLANG     ?= clang
BPFTOOL   ?= bpftool
ARCH      := x86

CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra -Werror -I$(OUT) -Ibpf -Iprobes -Icli -Icli/core -Itui
LDLIBS    := -lbpf -lelf -lz -lcjson -lm -lmicrohttpd
# curses only for the program (tui/draw.c, tui/keys.c), never for unit tests
TUI_LIBS  := $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw)

ifeq ($(SANITIZE),1)
CC        := clang
CFLAGS    += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS   += -fsanitize=address,undefined
# Every report goes to a file under $(SAN_LOG) (also those of the report
# renderer child, which runs as nobody: the directory is world-writable);
# unit and e2e fail when one was written. Leak checking is on.
SAN_LOG   := $(CURDIR)/$(OUT)/sanitizer-logs
export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0:exitcode=86:log_path=$(SAN_LOG)/asan
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1:log_path=$(SAN_LOG)/ubsan
san_reset = @rm -rf $(SAN_LOG) && mkdir -p $(SAN_LOG) && chmod 1777 $(SAN_LOG)
san_check = @if ls $(SAN_LOG)/* >/dev/null 2>&1; then cat $(SAN_LOG)/*; \
	echo "loopspy: sanitizer reports in $(SAN_LOG) (above)" >&2; exit 1; fi
endif

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

CORE_SRC  := $(wildcard cli/core/*.c) probes/cpython_layouts.c
APP_SRC   := $(filter-out $(CORE_SRC),$(wildcard cli/*.c probes/*.c tui/*.c))
CORE_OBJ  := $(patsubst %.c,$(OUT)/obj/%.o,$(CORE_SRC))
APP_OBJ   := $(patsubst %.c,$(OUT)/obj/%.o,$(APP_SRC))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRC))
# the pure part of the TUI (no curses), linked into unit tests
VIEW_OBJ  := $(OUT)/obj/tui/view.o

PYTEST    := /usr/bin/python3 -m pytest

.PHONY: all deps clean test unit e2e demo golden fuzz fuzz-build fuzz-regress fuzz-merge soak bench
all: $(OUT)/loopspy

deps:
	$(Q)bash .ci/deps.sh

$(OUT)/vmlinux.h:
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(OUT)
	$(Q)if [ -f bpf/vmlinux.h ]; then cp bpf/vmlinux.h $@; \
	elif [ -r /sys/kernel/btf/vmlinux ]; then $(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@; \
	else echo "loopspy: cannot generate vmlinux.h: /sys/kernel/btf/vmlinux is missing (kernel without BTF)" >&2; \
	     echo "hint: build on a kernel with CONFIG_DEBUG_INFO_BTF=y or put a vmlinux.h in bpf/" >&2; exit 1; fi

$(OUT)/loopspy.bpf.o: bpf/loopspy.bpf.c bpf/loopspy.h $(OUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(OUT) -Ibpf -idirafter /usr/include/x86_64-linux-gnu -Wall -Werror -c $< -o $@

$(OUT)/loopspy.skel.h: $(OUT)/loopspy.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(OUT)/syscall_names.inc: /usr/include/x86_64-linux-gnu/asm/unistd_64.h
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(OUT)
	$(Q)awk '$$1 == "#define" && $$2 ~ /^__NR_/ && $$3 ~ /^[0-9]+$$/ { sub("__NR_", "", $$2); printf "\t[%s] = \"%s\",\n", $$3, $$2 }' $< > $@

$(OUT)/obj/%.o: %.c $(OUT)/loopspy.skel.h $(OUT)/syscall_names.inc $(wildcard bpf/*.h probes/*.h cli/*.h cli/core/*.h tui/*.h)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/loopspy: $(APP_OBJ) $(CORE_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) $(TUI_LIBS) -o $@

$(OUT)/tests/%: tests/unit/%.c $(CORE_OBJ) $(VIEW_OBJ)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

# Unit tests: pure code, no root. Line-table fixtures come from every
# installed interpreter (Debian python3 always, pyenv builds if present).
unit: $(UNIT_BIN)
	$(Q)rm -rf $(OUT)/fixtures && bash tests/unit/run-pyline-fixtures.sh $(OUT)/fixtures
	$(san_reset)
	$(Q)set -e; for t in $(UNIT_BIN); do echo "== $$t"; LOOPSPY_FIXTURES=$(OUT)/fixtures LOOPSPY_ROOT=$(CURDIR) $$t; done
	$(san_check)

# Rewrites tests/golden/ from the report renderers after an intended change
# of an output format; review `git diff tests/golden` before committing.
golden: $(OUT)/tests/test_render
	$(Q)LOOPSPY_ROOT=$(CURDIR) LOOPSPY_UPDATE_GOLDEN=1 $<

# End-to-end: real BPF against the programs in tests/programs (root).
e2e: $(OUT)/loopspy
	$(san_reset)
	$(Q)LOOPSPY=$(CURDIR)/$(OUT)/loopspy $(PYTEST) -q -ra tests/e2e $(PYTEST_ARGS)
	$(san_check)

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory e2e

# Fuzzing (libFuzzer + ASan + UBSan, clang): each target runs FUZZ_SECONDS
# (default 60) from its committed corpus tests/fuzz/corpus/<target>/ (seeds
# and regression inputs, read only) and a working corpus in $(OUT)/fuzz/.
# A crash stops make; its input is in $(OUT)/fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := fuzz_pysym fuzz_report_read
FUZZ_BIN  := $(addprefix $(OUT)/fuzz/,$(FUZZ_TARGETS))
FUZZ_CFLAGS := -g -O1 -std=gnu11 -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -I$(OUT) -Ibpf -Iprobes -Icli -Icli/core
FUZZ_SRC_fuzz_pysym := cli/core/pysym.c cli/core/pyline.c probes/cpython_layouts.c
FUZZ_SRC_fuzz_report_read := cli/core/report_read.c $(wildcard cli/core/render_*.c) cli/core/gate.c \
	cli/core/diff.c cli/core/units.c

.SECONDEXPANSION:
$(OUT)/fuzz/%: tests/fuzz/%.c $$(FUZZ_SRC_$$*) $(wildcard cli/core/*.h probes/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $< $(FUZZ_SRC_$*) -lcjson -lm -o $@

fuzz-build: $(FUZZ_BIN)

fuzz: $(addprefix fuzz-run-,$(FUZZ_TARGETS))

fuzz-run-%: $(OUT)/fuzz/%
	$(Q)mkdir -p $(OUT)/fuzz/work/$* $(OUT)/fuzz/artifacts/$* tests/fuzz/corpus/$*
	$(Q)echo "== $*: $(FUZZ_SECONDS) s"
	$(Q)ASAN_OPTIONS=detect_leaks=1 $< -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=$(OUT)/fuzz/artifacts/$*/ $(OUT)/fuzz/work/$* tests/fuzz/corpus/$* \
	  > $(OUT)/fuzz/$*.log 2>&1 || { tail -60 $(OUT)/fuzz/$*.log; \
	  echo "loopspy: fuzzer $* failed: input in $(OUT)/fuzz/artifacts/$*/, log $(OUT)/fuzz/$*.log" >&2; \
	  echo "hint: fix it, then keep the input: cp $(OUT)/fuzz/artifacts/$*/crash-* tests/fuzz/corpus/$*/" >&2; exit 1; }
	$(Q)grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' $(OUT)/fuzz/$*.log

# Every committed corpus input once (seeds and fixed crashes): seconds.
fuzz-regress: $(FUZZ_BIN)
	$(Q)set -e; for t in $(FUZZ_TARGETS); do echo "== $$t: $$(ls tests/fuzz/corpus/$$t | wc -l) inputs"; \
	  ASAN_OPTIONS=detect_leaks=1 $(OUT)/fuzz/$$t -runs=0 tests/fuzz/corpus/$$t > $(OUT)/fuzz/$$t.regress.log 2>&1 \
	  || { tail -40 $(OUT)/fuzz/$$t.regress.log; exit 1; }; grep -E 'INITED|DONE' $(OUT)/fuzz/$$t.regress.log; done

# Adds the working-corpus inputs that reach new coverage to the committed one.
fuzz-merge: $(FUZZ_BIN)
	$(Q)set -e; for t in $(FUZZ_TARGETS); do mkdir -p $(OUT)/fuzz/work/$$t; \
	  $(OUT)/fuzz/$$t -merge=1 tests/fuzz/corpus/$$t $(OUT)/fuzz/work/$$t 2>&1 | tail -1; done

# Soak (not in CI): SOAK_SECONDS (default 600) attached to a busy target
# with thread churn; prints loopspy's RSS and the BPF maps' sizes over time
# and fails when they grow or events are dropped at steady state.
SOAK_SECONDS ?= 600
soak: $(OUT)/loopspy
	$(Q)/usr/bin/python3 tests/soak/soak.py --loopspy $(CURDIR)/$(OUT)/loopspy --seconds $(SOAK_SECONDS)

# Overhead benchmark (not in CI; root, ~6 min): loopspy vs untraced and vs
# strace, PYTHONASYNCIODEBUG=1 and bpftrace on four workloads; prints the
# budget lines and writes docs/performance.md (bench/run.py, BENCH_* knobs).
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)/usr/bin/python3 bench/run.py

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)echo "+ build/loopspy run -d 4 -o $(OUT)/demo.json -- /usr/bin/python3 tests/programs/demo_app.py"
	$(Q)$(OUT)/loopspy run -d 4 -o $(OUT)/demo.json -- /usr/bin/python3 tests/programs/demo_app.py; \
	  st=$$?; [ $$st -eq 0 ] || [ $$st -eq 143 ] || exit $$st
	$(Q)echo "JSON report: $(OUT)/demo.json"

clean:
	rm -rf $(OUT)
