/* event.h - the daemon's event log (`vmodulectl events`): one JSON object per
 * event, {"time": "<ISO 8601 UTC, ms>", "module": "<name>" (absent for the
 * daemon), "kind": "<kind>", ...fields}. Kinds: "fault" (a fault fired,
 * field "do"), "state" (field "what" and its new "state"), "urc" (field
 * "text": a URC written towards the MCU, secrets never included; recorded
 * only while a follower is attached, so modules pay nothing for it
 * otherwise), "warn" (e.g. a scheduled fault that never fired).
 *
 * The last VM_EVENT_KEEP events are kept for `events` without -f; followers
 * get every event as it happens. */
#ifndef VMODULE_EVENT_H
#define VMODULE_EVENT_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#define VM_EVENT_KEEP 1024

/* Logs one event; fields (may be NULL) is an object whose members are
 * added after "kind" and is taken over. */
void vm_event(const char *module, const char *kind, cJSON *fields);
/* Shorthand: {"what": what, "state": state}. */
void vm_event_state(const char *module, const char *what, const char *state);
/* True while a follower wants URC events (vm_event(..., "urc", ...) is
 * worth formatting). */
bool vm_event_want_urcs(void);

typedef void (*vm_event_cb)(void *ctx, const char *line); /* line without '\n' */
/* Followers (the control socket's `events -f` clients). */
int vm_event_follow(vm_event_cb cb, void *ctx);
void vm_event_unfollow(vm_event_cb cb, void *ctx);
/* Calls cb for every kept event, oldest first. */
void vm_event_replay(vm_event_cb cb, void *ctx);
/* Frees the kept events (at exit). */
void vm_event_shutdown(void);

#endif
