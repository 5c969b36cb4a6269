/* memtrim.c - gives freed heap back to the kernel after a burst of work.
 *
 * A TLS handshake allocates about 22 KiB of buffers that OpenSSL frees once
 * it is done (SSL_MODE_RELEASE_BUFFERS frees the record buffers of idle
 * connections too). When a thousand modules connect at once, those chunks
 * end up between allocations that stay (the SSL objects, libmosquitto's
 * state), so glibc cannot shrink the heap: measured at 1000 tls-psk modules,
 * 21 KiB per module stays resident for nothing. malloc_trim() hands whole
 * free pages back wherever they are (MADV_DONTNEED), so one call after the
 * burst brings it back (75 -> 53 KiB per module).
 *
 * One timer for the process, on the loop of the first caller: unreferenced,
 * so a pending trim never holds the loop (or the daemon's exit) up, and
 * closed after it fired. Callers on another loop (unit tests) trim at once. */
#include "vmodule/memtrim.h"

#include <malloc.h>
#include <stdbool.h>

#define TRIM_DELAY_MS 1000

static uv_timer_t g_timer;
static uv_loop_t *g_loop; /* the timer's loop while it is open */

static void trim_closed(uv_handle_t *h) {
  (void)h;
  g_loop = NULL;
}

static void trim_cb(uv_timer_t *t) {
  malloc_trim(0);
  uv_close((uv_handle_t *)t, trim_closed);
}

void vm_memtrim_soon(uv_loop_t *loop) {
  if (g_loop == loop)
    return; /* one is due (or its timer is closing: the burst's end is near) */
  if (g_loop || uv_timer_init(loop, &g_timer) < 0) {
    malloc_trim(0);
    return;
  }
  g_loop = loop;
  uv_unref((uv_handle_t *)&g_timer);
  uv_timer_start(&g_timer, trim_cb, TRIM_DELAY_MS, 0);
}
