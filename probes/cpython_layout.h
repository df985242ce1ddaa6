/* CPython struct layouts needed to walk Python stacks from outside the
 * process. The table itself (cpython_layouts.inc) is generated from each
 * version's own headers by probes/gen-cpython-layouts.sh and committed, so a
 * machine without those headers still builds. Every offset is in bytes; -1
 * means "this field does not exist in this version". */
#ifndef LOOPSPY_CPYTHON_LAYOUT_H
#define LOOPSPY_CPYTHON_LAYOUT_H

struct cpython_layout {
	int major, minor;
	/* _PyRuntimeState */
	int rt_interp_head;     /* interpreters.head */
	int rt_tss_key;         /* Py_tss_t autoTSSkey (gilstate.autoTSSkey <= 3.11) */
	int rt_gil;             /* ceval.gil (struct, <= 3.11), else -1 */
	/* PyInterpreterState */
	int interp_tstate_head; /* tstate_head / threads.head */
	int interp_gil_ptr;     /* ceval.gil (pointer, >= 3.12), else -1 */
	/* PyThreadState */
	int tstate_next;
	int tstate_interp;
	int tstate_thread_id;
	int tstate_native_thread_id; /* >= 3.11, else -1 */
	int tstate_cframe;      /* 3.11/3.12: cframe pointer, else -1 */
	int tstate_frame;       /* top frame: in tstate (<=3.10, >=3.13) or in *cframe */
	/* frame: PyFrameObject (<= 3.10) or _PyInterpreterFrame (>= 3.11) */
	int frame_back;         /* f_back / previous */
	int frame_code;         /* f_code / f_executable */
	int frame_pos;          /* f_lasti (int) or prev_instr/instr_ptr (pointer) */
	int frame_owner;        /* char owner (>= 3.11; 3 = C-stack shim only from 3.12), else -1 */
	int frame_is_entry;     /* bool is_entry (3.11 only: first frame of a C call), else -1 */
	/* PyCodeObject */
	int code_argcount;
	int code_flags;
	int code_firstlineno;
	int code_filename;
	int code_name;
	int code_qualname;      /* >= 3.11, else -1 */
	int code_linetable;     /* co_lnotab (<= 3.9) or co_linetable */
	int code_adaptive;      /* co_code_adaptive (>= 3.11), else -1 */
	/* objects */
	int object_type;        /* ob_type */
	int type_basicsize;     /* PyTypeObject.tp_basicsize */
	int type_name;          /* PyTypeObject.tp_name */
	int str_ascii_data;     /* sizeof(PyASCIIObject): compact ASCII data */
	int str_length;         /* PyASCIIObject.length */
	int str_state;          /* PyASCIIObject.state (bitfield word) */
	int bytes_size;         /* ob_size */
	int bytes_data;         /* ob_sval */
	int gil_size;           /* sizeof(struct _gil_runtime_state) */
	int gil_locked;         /* offsetof locked */
	int gil_last_holder;    /* offsetof last_holder */
	int code_size;          /* PyCode_Type.tp_basicsize: sizeof(PyCodeObject) <= 3.10,
	                         * offsetof co_code_adaptive >= 3.11 */
};

/* Layout for a CPython major.minor, or NULL when unsupported. */
const struct cpython_layout *cpython_layout_find(int major, int minor);

#endif
