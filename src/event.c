/* event.c - the daemon's event log (event.h): the last VM_EVENT_KEEP events
 * as JSON lines in a ring made on the first event, and the followers that
 * get each one as it happens. One per daemon, on the loop's thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "vmodule/event.h"

#define MAX_FOLLOWERS 64

static char **g_ring; /* VM_EVENT_KEEP slots */
static size_t g_head, g_count;
static struct {
  vm_event_cb cb;
  void *ctx;
} g_followers[MAX_FOLLOWERS];
static int g_nfollowers;

bool vm_event_want_urcs(void) { return g_nfollowers > 0; }

static void stamp(char *out, size_t cap) {
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, cap - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

static void keep(char *line) {
  if (!g_ring && !(g_ring = calloc(VM_EVENT_KEEP, sizeof *g_ring))) {
    free(line);
    return;
  }
  if (g_count == VM_EVENT_KEEP) { /* the oldest goes */
    free(g_ring[g_head]);
    g_ring[g_head] = line;
    g_head = (g_head + 1) % VM_EVENT_KEEP;
    return;
  }
  g_ring[(g_head + g_count++) % VM_EVENT_KEEP] = line;
}

void vm_event(const char *module, const char *kind, cJSON *fields) {
  char ts[40];
  cJSON *o = cJSON_CreateObject();
  stamp(ts, sizeof ts);
  cJSON_AddStringToObject(o, "time", ts);
  if (module) cJSON_AddStringToObject(o, "module", module);
  cJSON_AddStringToObject(o, "kind", kind);
  if (fields) {
    while (fields->child) {
      cJSON *item = cJSON_DetachItemViaPointer(fields, fields->child);
      cJSON_AddItemToObject(o, item->string, item);
    }
    cJSON_Delete(fields);
  }
  char *line = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!line) return;
  /* followers only queue the line: none unfollows while being told */
  for (int i = 0; i < g_nfollowers; i++) g_followers[i].cb(g_followers[i].ctx, line);
  keep(line);
}

void vm_event_state(const char *module, const char *what, const char *state) {
  cJSON *f = cJSON_CreateObject();
  cJSON_AddStringToObject(f, "what", what);
  cJSON_AddStringToObject(f, "state", state);
  vm_event(module, "state", f);
}

int vm_event_follow(vm_event_cb cb, void *ctx) {
  if (g_nfollowers == MAX_FOLLOWERS) return -1;
  g_followers[g_nfollowers].cb = cb;
  g_followers[g_nfollowers].ctx = ctx;
  g_nfollowers++;
  return 0;
}

void vm_event_unfollow(vm_event_cb cb, void *ctx) {
  for (int i = 0; i < g_nfollowers; i++) {
    if (g_followers[i].cb != cb || g_followers[i].ctx != ctx) continue;
    memmove(&g_followers[i], &g_followers[i + 1], (size_t)(g_nfollowers - i - 1) *
            sizeof g_followers[0]);
    g_nfollowers--;
    return;
  }
}

void vm_event_replay(vm_event_cb cb, void *ctx) {
  for (size_t i = 0; i < g_count; i++) cb(ctx, g_ring[(g_head + i) % VM_EVENT_KEEP]);
}

void vm_event_shutdown(void) {
  for (size_t i = 0; i < g_count; i++) free(g_ring[(g_head + i) % VM_EVENT_KEEP]);
  free(g_ring);
  g_ring = NULL;
  g_head = g_count = 0;
}
