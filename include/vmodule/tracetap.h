/* tracetap.h - the serial trace as the control socket shows it (`vmodulectl
 * trace MODULE [-f]`): the same entries as a trace file ("<time> <dir>
 * <escaped bytes>", secrets already redacted by the engine), the last
 * VM_TRACETAP_KEEP kept in memory and handed to followers as they happen.
 * A module has a tap (m->taps) from its first `trace` request on, or from
 * its start when its config enables faults. */
#ifndef VMODULE_TRACETAP_H
#define VMODULE_TRACETAP_H

#include <stddef.h>

struct vm_module;

#define VM_TRACETAP_KEEP 256

typedef void (*vm_tracetap_cb)(void *ctx, const char *line); /* line without '\n' */

/* Creates m->taps if need be; -1 on ENOMEM. */
int vm_tracetap_open(struct vm_module *m);
void vm_tracetap_feed(struct vm_module *m, char dir, const void *buf, size_t len);
void vm_tracetap_replay(struct vm_module *m, vm_tracetap_cb cb, void *ctx);
int vm_tracetap_follow(struct vm_module *m, vm_tracetap_cb cb, void *ctx);
void vm_tracetap_unfollow(struct vm_module *m, vm_tracetap_cb cb, void *ctx);
void vm_tracetap_free(struct vm_module *m);

#endif
