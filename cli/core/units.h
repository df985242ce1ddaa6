/* Parsing of user-supplied durations: "100", "100ms", "0.5s", "250us". */
#ifndef LOOPSPY_UNITS_H
#define LOOPSPY_UNITS_H
#include <stdint.h>

/* Parses s into ns; a bare number is in default_unit_ns. 0 on success, -1
 * when malformed, negative, or out of range. */
int duration_parse(const char *s, uint64_t default_unit_ns, uint64_t *ns);

#endif
