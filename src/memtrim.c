/* memtrim.c - gives freed heap back to the kernel after a burst of work.
 *
 * A TLS handshake allocates about 22 KiB of buffers that OpenSSL frees once
 * it is done (SSL_MODE_RELEASE_BUFFERS frees the record buffers of idle
 * connections too). When a thousand modules connect at once, those chunks
 * end up between allocations that stay (the SSL objects, libmosquitto's
 * state), so glibc cannot shrink the heap: measured at 1000 tls-psk modules,
 * 21 KiB per module stayed resident for nothing. malloc_trim() hands whole
 * free pages back wherever they are (MADV_DONTNEED), so one call after the
 * burst brings it back (75 -> 43 KiB per module with the other savings).
 *
 * No timer of its own: the connected MQTT sessions' one-second keepalive
 * timers tick it, and the first tick a second after the burst's last
 * handshake trims. A handle here would outlive every module at shutdown. */
#include "vmodule/memtrim.h"

#include <malloc.h>
#include <stdint.h>
#include <uv.h>

#define TRIM_DELAY_NS (1000 * 1000000ull)

static uint64_t g_due; /* uv_hrtime() from which a trim is due; 0: none */

void vm_memtrim_soon(void) { g_due = uv_hrtime() + TRIM_DELAY_NS; }

void vm_memtrim_tick(void) {
  if (!g_due || uv_hrtime() < g_due)
    return;
  g_due = 0;
  malloc_trim(0);
}
