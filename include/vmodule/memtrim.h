/* memtrim.h - gives freed heap back to the kernel after a burst of work
 * (memtrim.c). */
#ifndef VMODULE_MEMTRIM_H
#define VMODULE_MEMTRIM_H

#include <uv.h>

/* Asks for one malloc_trim() about a second from now, unless one is already
 * due: every call of a burst ends in a single trim after it. */
void vm_memtrim_soon(uv_loop_t *loop);

#endif
