# loopspy — one Makefile. `make V=1` shows the commands.
OUT       := build
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

.PHONY: all deps clean test unit e2e demo golden
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
	$(Q)set -e; for t in $(UNIT_BIN); do echo "== $$t"; LOOPSPY_FIXTURES=$(OUT)/fixtures LOOPSPY_ROOT=$(CURDIR) $$t; done

# Rewrites tests/golden/ from the report renderers after an intended change
# of an output format; review `git diff tests/golden` before committing.
golden: $(OUT)/tests/test_render
	$(Q)LOOPSPY_ROOT=$(CURDIR) LOOPSPY_UPDATE_GOLDEN=1 $<

# End-to-end: real BPF against the programs in tests/programs (root).
e2e: $(OUT)/loopspy
	$(Q)LOOPSPY=$(CURDIR)/$(OUT)/loopspy $(PYTEST) -q -ra tests/e2e $(PYTEST_ARGS)

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory e2e

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)echo "+ build/loopspy run -d 4 -o $(OUT)/demo.json -- /usr/bin/python3 tests/programs/demo_app.py"
	$(Q)$(OUT)/loopspy run -d 4 -o $(OUT)/demo.json -- /usr/bin/python3 tests/programs/demo_app.py; \
	  st=$$?; [ $$st -eq 0 ] || [ $$st -eq 143 ] || exit $$st
	$(Q)echo "JSON report: $(OUT)/demo.json"

clean:
	rm -rf $(OUT)
