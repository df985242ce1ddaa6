#include "pysym.h"
#include "pyline.h"

#include <stdlib.h>
#include <string.h>

#define PYSYM_SLOTS 4096          /* cache entries; cleared when full */
#define PYSYM_MAX_STR 256         /* longer names are truncated */
#define PYSYM_MAX_TABLE (256 * 1024)
#define PYSYM_MAX_HDR 512

struct pysym_entry {
	uint64_t code;
	uint32_t firstlineno;
	int valid;                /* 1 resolved, -1 known not to be a code object */
	int fl;                   /* co_firstlineno as read */
	char *function, *file;
	unsigned char *table;
	size_t table_len;
};

struct pysym {
	const struct cpython_layout *L;
	mem_read_fn read;
	void *ctx;
	uint64_t code_type;
	struct pysym_entry *slots;
	size_t used;
	uint64_t hits, misses, failures;
};

struct pysym *pysym_new(const struct cpython_layout *layout, mem_read_fn read, void *ctx,
			uint64_t code_type_addr)
{
	struct pysym *s;

	if (!layout || !read)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->slots = calloc(PYSYM_SLOTS, sizeof(*s->slots));
	if (!s->slots) {
		free(s);
		return NULL;
	}
	s->L = layout;
	s->read = read;
	s->ctx = ctx;
	s->code_type = code_type_addr;
	return s;
}

static void entry_clear(struct pysym_entry *e)
{
	free(e->function);
	free(e->file);
	free(e->table);
	memset(e, 0, sizeof(*e));
}

void pysym_free(struct pysym *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < PYSYM_SLOTS; i++)
		entry_clear(&s->slots[i]);
	free(s->slots);
	free(s);
}

static uint64_t rd_u64(const unsigned char *hdr, int off)
{
	uint64_t v;

	memcpy(&v, hdr + off, sizeof(v));
	return v;
}

/* A compact ASCII str object (the only kind CPython uses for identifiers
 * and most paths); anything else is shown as "?". */
static char *str_read(struct pysym *s, uint64_t addr)
{
	const struct cpython_layout *L = s->L;
	unsigned char hdr[64];
	int64_t len;
	uint32_t state;
	char *out;

	if (!addr || L->str_ascii_data > (int)sizeof(hdr) || s->read(s->ctx, addr, hdr, (size_t)L->str_ascii_data))
		return NULL;
	memcpy(&len, hdr + L->str_length, sizeof(len));
	memcpy(&state, hdr + L->str_state, sizeof(state));
	if (!((state >> 5) & 1) || !((state >> 6) & 1)) /* compact, ascii */
		return strdup("?");
	if (len < 0)
		return NULL;
	if (len > PYSYM_MAX_STR)
		len = PYSYM_MAX_STR;
	out = malloc((size_t)len + 1);
	if (!out)
		return NULL;
	if (len && s->read(s->ctx, addr + (uint64_t)L->str_ascii_data, out, (size_t)len)) {
		free(out);
		return NULL;
	}
	out[len] = '\0';
	return out;
}

static unsigned char *bytes_read(struct pysym *s, uint64_t addr, size_t *len_out)
{
	const struct cpython_layout *L = s->L;
	int64_t len = 0;
	unsigned char *out;

	*len_out = 0;
	if (!addr || s->read(s->ctx, addr + (uint64_t)L->bytes_size, &len, sizeof(len)))
		return NULL;
	if (len < 0 || len > PYSYM_MAX_TABLE)
		return NULL;
	out = malloc(len ? (size_t)len : 1);
	if (!out)
		return NULL;
	if (len && s->read(s->ctx, addr + (uint64_t)L->bytes_data, out, (size_t)len)) {
		free(out);
		return NULL;
	}
	*len_out = (size_t)len;
	return out;
}

static int entry_load(struct pysym *s, struct pysym_entry *e, uint64_t code)
{
	const struct cpython_layout *L = s->L;
	unsigned char hdr[PYSYM_MAX_HDR];
	size_t n = (size_t)L->code_size;
	uint64_t type, name_ptr;
	int32_t fl;

	if (n > sizeof(hdr) || n < 64 || s->read(s->ctx, code, hdr, n))
		return -1;
	type = rd_u64(hdr, L->object_type);
	if (s->code_type && type != s->code_type)
		return -1;
	memcpy(&fl, hdr + L->code_firstlineno, sizeof(fl));
	/* the walker read co_firstlineno when it saw the frame: another value
	 * now means the address holds another object (freed and reused, or
	 * a process that exec'd since) */
	if (e->firstlineno && fl != (int32_t)e->firstlineno)
		return -1;
	e->fl = fl;
	name_ptr = rd_u64(hdr, L->code_qualname >= 0 ? L->code_qualname : L->code_name);
	e->function = str_read(s, name_ptr);
	e->file = str_read(s, rd_u64(hdr, L->code_filename));
	if (!e->function || !e->file)
		return -1;
	e->table = bytes_read(s, rd_u64(hdr, L->code_linetable), &e->table_len);
	return 0;
}

int pysym_resolve(struct pysym *s, uint64_t code, uint32_t pos, uint32_t firstlineno,
		  struct pysym_frame *out)
{
	struct pysym_entry *e = NULL;
	size_t h, i;
	int line;

	if (!s || !out || !code)
		return -1;
	h = (size_t)((code >> 4) ^ (code >> 17) ^ firstlineno) % PYSYM_SLOTS;
	for (i = 0; i < 16; i++) {
		struct pysym_entry *c = &s->slots[(h + i) % PYSYM_SLOTS];

		if (c->valid && c->code == code && c->firstlineno == firstlineno) {
			e = c;
			s->hits++;
			break;
		}
		if (!c->valid) {
			e = c;
			break;
		}
	}
	if (!e) {
		/* neighbourhood full: evict its home slot */
		e = &s->slots[h];
		entry_clear(e);
		s->used--;
	}
	if (!e->valid) {
		s->misses++;
		e->code = code;
		e->firstlineno = firstlineno;
		if (entry_load(s, e, code) < 0) {
			entry_clear(e);
			e->code = code;
			e->firstlineno = firstlineno;
			e->valid = -1;
			s->failures++;
			s->used++;
			return -1;
		}
		e->valid = 1;
		s->used++;
	}
	if (e->valid < 0)
		return -1;
	/* a frame that has not started yet is on its first line (a negative
	 * co_firstlineno is garbage, not a line) */
	line = pos == 0xffffffffu && e->fl >= 0 ? e->fl : -1;
	if (e->table && pos != 0xffffffffu)
		line = pyline_lookup(s->L->major, s->L->minor, e->table, e->table_len, e->fl, pos);
	out->function = e->function;
	out->file = e->file;
	out->line = line;
	return 0;
}

void pysym_stats(const struct pysym *s, uint64_t *hits, uint64_t *misses, uint64_t *failures)
{
	*hits = s ? s->hits : 0;
	*misses = s ? s->misses : 0;
	*failures = s ? s->failures : 0;
}
