#define _GNU_SOURCE
#include "pyruntime.h"
#include "procmem.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct elf_syms {
	uint64_t runtime, code_type, py_version;
	int is_dyn;
	/* PT_LOAD segments, to translate a mapping's file offset to a vaddr */
	struct { uint64_t vaddr, off, filesz; } load[16];
	int nload;
};

/* ELF files larger than this are not CPython (libpython is ~25 MB with
 * symbols): a hostile target must not make loopspy map gigabytes. */
#define ELF_MAX_BYTES (512L << 20)

/* Symbol values from .dynsym and .symtab (stripped binaries keep .dynsym).
 * The path is the target's: it may name a FIFO or a device (a hostile
 * container), which must neither block nor be read. */
static int elf_syms_read(const char *path, struct elf_syms *out)
{
	Elf *elf = NULL;
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	struct stat st;
	size_t nph = 0, i;
	int fd, ret = -1;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > ELF_MAX_BYTES) {
		close(fd);
		return -1;
	}
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh))
		goto cleanup;
	out->is_dyn = eh.e_type == ET_DYN;
	if (elf_getphdrnum(elf, &nph) == 0) {
		for (i = 0; i < nph && out->nload < 16; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
				out->load[out->nload].vaddr = ph.p_vaddr;
				out->load[out->nload].off = ph.p_offset;
				out->load[out->nload].filesz = ph.p_filesz;
				out->nload++;
			}
		}
	}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		data = elf_getdata(scn, NULL);
		if (!data || !sh.sh_entsize)
			continue;
		n = sh.sh_size / sh.sh_entsize;
		for (i = 0; i < n; i++) {
			GElf_Sym sym;
			const char *name;

			if (!gelf_getsym(data, (int)i, &sym) || !sym.st_value || sym.st_shndx == SHN_UNDEF)
				continue;
			name = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (!name || (name[0] != '_' && name[0] != 'P'))
				continue;
			if (!strcmp(name, "_PyRuntime"))
				out->runtime = sym.st_value;
			else if (!strcmp(name, "PyCode_Type"))
				out->code_type = sym.st_value;
			else if (!strcmp(name, "Py_Version"))
				out->py_version = sym.st_value;
		}
	}
	ret = out->runtime ? 0 : 1;
cleanup:
	if (elf)
		elf_end(elf);
	close(fd);
	return ret;
}

/* "…/libpython3.9.so.1.0", "…/python3.11", "…/versions/3.8.18/…"; 2.x
 * too (to say it is not supported) */
static void version_from_path(const char *path, struct pyruntime *rt)
{
	const char *p = strstr(path, "/versions/");
	int a, b, c;

	if (p && sscanf(p, "/versions/%d.%d.%d", &a, &b, &c) == 3 && (a == 2 || a == 3) &&
	    b >= 0 && b < 100 && c >= 0 && c < 1000) {
		rt->major = a; rt->minor = b; rt->micro = c;
		return;
	}
	p = strrchr(path, '/');
	p = p ? p + 1 : path;
	if ((sscanf(p, "libpython%d.%d", &a, &b) == 2 || sscanf(p, "python%d.%d", &a, &b) == 2) &&
	    (a == 2 || a == 3) && b >= 0 && b < 100) {
		rt->major = a; rt->minor = b; rt->micro = -1;
	}
}

static void version_format(struct pyruntime *rt)
{
	if (rt->micro >= 0)
		snprintf(rt->version, sizeof(rt->version), "%d.%d.%d", rt->major, rt->minor, rt->micro);
	else
		snprintf(rt->version, sizeof(rt->version), "%d.%d", rt->major, rt->minor);
}

/* libpython3.X.so or a python3.X executable; not extension modules
 * ("_asyncio.cpython-312-x86_64-linux-gnu.so"), which never define the
 * runtime and can be many */
static int basename_has_python(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	return (!strncmp(b, "libpython", 9) || !strncmp(b, "python", 6)) && !strstr(b, ".cpython-");
}

int pyruntime_find(pid_t pid, struct pyruntime *rt)
{
	char mpath[64], line[1024], exe[512], tried[8][512];
	struct pyruntime legacy; /* a python/libpython mapping without _PyRuntime */
	FILE *f = NULL;
	int ntried = 0, ret = 1;
	ssize_t n;

	memset(rt, 0, sizeof(*rt));
	memset(&legacy, 0, sizeof(legacy));
	snprintf(mpath, sizeof(mpath), "/proc/%d/exe", (int)pid);
	n = readlink(mpath, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	snprintf(mpath, sizeof(mpath), "/proc/%d/maps", (int)pid);
	f = fopen(mpath, "re");
	if (!f) {
		int err = errno;

		snprintf(rt->reason, sizeof(rt->reason), "cannot read %s: %s%s", mpath, strerror(err),
			 err == EACCES || err == EPERM ? " (reading another user's process needs CAP_SYS_PTRACE)" : "");
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end, off;
		char perms[8], path[512], file[600];
		struct elf_syms es;
		int i, seen = 0;

		path[0] = '\0';
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %511s", &start, &end, perms, &off, path) < 4)
			continue;
		if (path[0] != '/' || (strcmp(path, exe) && !basename_has_python(path)))
			continue;
		if (!legacy.major && basename_has_python(path))
			version_from_path(path, &legacy);
		for (i = 0; i < ntried; i++)
			seen |= !strcmp(tried[i], path);
		if (seen || ntried >= 8)
			continue;
		snprintf(tried[ntried++], sizeof(tried[0]), "%s", path);
		/* the very file that is mapped (map_files: immune to a path
		 * replaced since, needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE),
		 * else through /proc/PID/root so targets in containers resolve */
		snprintf(file, sizeof(file), "/proc/%d/map_files/%lx-%lx", (int)pid, start, end);
		if (elf_syms_read(file, &es) != 0) {
			snprintf(file, sizeof(file), "/proc/%d/root%s", (int)pid, path);
			if (elf_syms_read(file, &es) != 0 && elf_syms_read(path, &es) != 0)
				continue;
		}
		{
			uint64_t bias = 0;

			if (es.is_dyn) {
				/* first mapping of the file: map its offset to a vaddr */
				int k, ok = 0;

				for (k = 0; k < es.nload; k++) {
					if (off >= (es.load[k].off & ~0xfffUL) &&
					    off < es.load[k].off + es.load[k].filesz + 0x1000) {
						bias = start - ((es.load[k].vaddr & ~0xfffUL) +
								(off - (es.load[k].off & ~0xfffUL)));
						ok = 1;
						break;
					}
				}
				if (!ok)
					continue;
			}
			rt->found = 1;
			snprintf(rt->path, sizeof(rt->path), "%s", path);
			rt->runtime_addr = es.runtime + bias;
			rt->code_type_addr = es.code_type ? es.code_type + bias : 0;
			version_from_path(path, rt);
			if (!rt->major)
				version_from_path(exe, rt);
			if (es.py_version) {
				uint32_t v = 0;

				if (procmem_read(procmem_ctx(pid), es.py_version + bias, &v, sizeof(v)) == 0 &&
				    (v >> 24) == 3) {
					rt->major = 3;
					rt->minor = (v >> 16) & 0xff;
					rt->micro = (v >> 8) & 0xff;
				}
			}
			ret = 0;
			break;
		}
	}
	fclose(f);
	if (ret == 0) {
		version_format(rt);
		if (!rt->major)
			snprintf(rt->reason, sizeof(rt->reason), "cannot tell the CPython version of %s", rt->path);
	} else if (legacy.major) {
		/* the version from the binary's name: say why there are no stacks
		 * (CPython before 3.7 has no _PyRuntime at all) */
		rt->major = legacy.major;
		rt->minor = legacy.minor;
		rt->micro = legacy.micro;
		version_format(rt);
		snprintf(rt->reason, sizeof(rt->reason),
			 legacy.major == 2 || legacy.minor < 7 ? "CPython %s is not supported for stacks (3.8-3.13 are)"
							      : "CPython %s: no _PyRuntime symbol found in its mappings",
			 rt->version);
	} else {
		snprintf(rt->reason, sizeof(rt->reason), "not a CPython process (no _PyRuntime in its mappings)");
	}
	return ret;
}

static int read_u64(pid_t pid, uint64_t addr, uint64_t *v)
{
	return procmem_read(procmem_ctx(pid), addr, v, sizeof(*v));
}

int pyruntime_probe(pid_t pid, struct pyruntime *rt)
{
	const struct cpython_layout *L;
	struct { int32_t initialized; uint32_t key; } tss;
	uint64_t interp = 0, tstate = 0, back = 0;

	rt->ready = 0;
	if (!rt->found)
		return -1;
	L = rt->layout = cpython_layout_find(rt->major, rt->minor);
	if (!L) {
		snprintf(rt->reason, sizeof(rt->reason),
			 "CPython %s is not supported for stacks (3.8-3.13 are)", rt->version);
		return -1;
	}
	if (procmem_read(procmem_ctx(pid), rt->runtime_addr + L->rt_tss_key, &tss, sizeof(tss)))
		return 1;
	if (tss.initialized != 1)
		return 1;
	if (tss.key >= 32) {
		snprintf(rt->reason, sizeof(rt->reason),
			 "thread-state key %u is outside glibc's first TSD block", tss.key);
		return -1;
	}
	rt->tss_key = (int)tss.key;
	if (read_u64(pid, rt->runtime_addr + L->rt_interp_head, &interp) || !interp)
		return 1;
	if (read_u64(pid, interp + L->interp_tstate_head, &tstate) || !tstate)
		return 1;
	if (read_u64(pid, tstate + L->tstate_interp, &back) || back != interp) {
		snprintf(rt->reason, sizeof(rt->reason),
			 "CPython %s memory does not match the expected layout (thread state)", rt->version);
		return -1;
	}
	if (rt->code_type_addr) {
		int64_t basic = 0;

		if (procmem_read(procmem_ctx(pid), rt->code_type_addr + L->type_basicsize, &basic, sizeof(basic)) ||
		    basic != L->code_size) {
			snprintf(rt->reason, sizeof(rt->reason),
				 "CPython %s code objects are %lld bytes, expected %d: unknown build",
				 rt->version, (long long)basic, L->code_size);
			return -1;
		}
	}
	rt->interp_addr = interp;
	if (L->rt_gil >= 0)
		rt->gil_addr = rt->runtime_addr + L->rt_gil;
	else if (L->interp_gil_ptr >= 0 && read_u64(pid, interp + L->interp_gil_ptr, &rt->gil_addr))
		rt->gil_addr = 0;
	rt->ready = 1;
	rt->reason[0] = '\0';
	return 0;
}
