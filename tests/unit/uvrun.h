/* uvrun.h - unit-test helper: runs a libuv loop until a condition holds, with
 * a watchdog so that a broken test fails instead of hanging. The condition is
 * checked in a prepare callback, i.e. before the loop would block, so a
 * condition met by a callback never waits for one more event. */
#ifndef VMODULE_TEST_UVRUN_H
#define VMODULE_TEST_UVRUN_H

#include <uv.h>

struct uvrun_ctx {
  int (*done)(void *arg);
  void *arg;
  int expired;
};

static inline void uvrun_on_watchdog(uv_timer_t *t) {
  ((struct uvrun_ctx *)t->data)->expired = 1;
  uv_stop(t->loop);
}

static inline void uvrun_on_prepare(uv_prepare_t *p) {
  struct uvrun_ctx *c = p->data;
  if (c->done(c->arg)) uv_stop(p->loop);
}

/* Returns 0 once done(arg) holds, -1 when watchdog_ms passed first. */
static inline int uvrun_until(uv_loop_t *loop, int (*done)(void *), void *arg,
                              unsigned watchdog_ms) {
  struct uvrun_ctx c = {done, arg, 0};
  uv_timer_t dog;
  uv_prepare_t check;
  uv_timer_init(loop, &dog);
  dog.data = &c;
  uv_timer_start(&dog, uvrun_on_watchdog, watchdog_ms, 0);
  uv_prepare_init(loop, &check);
  check.data = &c;
  uv_prepare_start(&check, uvrun_on_prepare);
  if (!done(arg)) uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&dog, NULL);
  uv_close((uv_handle_t *)&check, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return c.expired ? -1 : 0;
}

#endif
