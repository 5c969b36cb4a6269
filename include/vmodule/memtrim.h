/* memtrim.h - gives freed heap back to the kernel after a burst of work
 * (memtrim.c). */
#ifndef VMODULE_MEMTRIM_H
#define VMODULE_MEMTRIM_H

/* A burst of work that freed memory goes on: trim about a second after the
 * last such call. */
void vm_memtrim_soon(void);
/* Called about once a second by whoever runs periodically (the MQTT
 * sessions' keepalive timers): trims when a trim is due. */
void vm_memtrim_tick(void);

#endif
