/* fault.h - faults on demand and on schedule.
 *
 * One entry point for every fault verb, used by the control socket
 * (vmodulectl) and by the scheduled faults of a module's config: argv[0] is
 * the verb, the rest its words, as on the vmodulectl command line:
 *   power off|on|cycle          a power cut (RAM lost, flash kept) / power back
 *   reboot                      as AT+RST
 *   urc TEXT                    an unsolicited line (C escapes), at the next
 *                               point the engine may write a URC
 *   wifi down|up                ESP family (dialect->fault)
 *   smartconfig SSID PASSWORD|stop   tencent: the phone's ESP-TOUCH (dialect->fault)
 *   cell deregister|register|signal N|sim-out|sim-in|datacall-drop   ME3630 (dialect->fault)
 *   net down|up|reset|blackhole|delay MS|dns-fail|dns-ok             (netfault.h)
 *   serial drop PPM|corrupt PPM|clear|unplug|plug                    (serfault.h)
 * A fault that fired is an event (event.h, kind "fault"). */
#ifndef VMODULE_FAULT_H
#define VMODULE_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

struct vm_module;
struct vm_module_config;

/* What a dialect, net or serial fault handler returns for a verb it does not
 * have (the caller then answers "<verb>: not a fault of the <dialect> dialect"). */
#define VM_FAULT_UNSUPPORTED (-2)
#define VM_FAULT_MAX_WORDS 8

/* Applies one fault now. Returns 0 (fired: an event is logged), or -1 with
 * one line in err (bad verb or arguments, or not possible in this state). */
int vm_fault_apply(struct vm_module *m, int argc, char **argv, char *err, size_t errlen);

/* Checks a verb and its words without a module (config validation): the
 * same messages as vm_fault_apply for words that are wrong everywhere. The
 * dialect decides whether it has the verb (dialect->fault_check may be NULL). */
int vm_fault_check(const struct vm_module_config *cfg, int argc, char **argv, char *err,
                   size_t errlen);

/* Splits a "do" string into words in place: spaces separate words; the
 * rest of the line after "urc " is one word. Returns the count, -1 when
 * there are more than max. */
int vm_fault_split(char *s, char **argv, int max);

/* Decodes C escapes (\r \n \t \\ \" \xNN \NNN) of s in place; returns the
 * length (the text may then hold NUL bytes), -1 on a bad escape. */
long vm_fault_unescape(char *s);

/* One entry of a module's "faults" list (config.c parses, fault.c runs). */
struct vm_fault_sched {
  long at_ms;   /* -1 when the entry is "after" */
  char *after;  /* a POSIX extended regex on the output towards the MCU, or NULL */
  char *action; /* the "do" string */
};

void vm_fault_sched_free(struct vm_fault_sched *f, int n);

/* Scheduled faults of a module: armed at its first power-on, in list order
 * (an entry is armed when the one before it has fired; at_ms counts from
 * power-on, an "after" regex matches output written once it is armed). */
int vm_fault_sched_start(struct vm_module *m);
void vm_fault_sched_stop(struct vm_module *m);
/* Adds the schedule's state to a status object ("faults": [...]); warns
 * (log WARN) about entries that never fired when at_exit. */
void vm_fault_sched_status(struct vm_module *m, cJSON *obj);
void vm_fault_sched_report(struct vm_module *m);

#endif
