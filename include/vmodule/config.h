/* config.h - the daemon configuration (JSON file or command line), validated
 * completely before anything is created. */
#ifndef VMODULE_CONFIG_H
#define VMODULE_CONFIG_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "vmodule/log.h"

struct vm_dialect;
struct vm_fault_sched;

struct vm_module_config {
  char *name;
  const struct vm_dialect *dialect;
  char *pty_link;  /* NULL: no PTY (tcp_listen or unix_listen instead) */
  char *tcp_host; /* NULL: no TCP endpoint */
  int tcp_port;
  char *unix_path; /* unix_listen; NULL: no unix socket endpoint */
  unsigned baud;  /* 0 = unpaced */
  bool echo;
  char *trace;    /* NULL: no trace */
  unsigned boot_ms; /* simulated reboot time */
  size_t tx_buffer;
  cJSON *dialect_json; /* the object named after the dialect (may be NULL) */
  void *dialect_conf;  /* parsed by the dialect */
  struct vm_fault_sched *faults; /* "faults": scheduled faults (fault.h) */
  int nfaults;
  bool fault_injection; /* "fault_injection", or "faults" given: the relays of
                           the data path that some faults need are inserted */
  int entry;   /* its index in "modules" */
  long tmpl_n; /* the n of a templated entry ("count"); -1 for a plain one */
};

#define VM_CONFIG_COUNT_MAX 100000   /* "count", and modules in all */
#define VM_CONFIG_FIRST_MAX 1000000000L

struct vm_config {
  char *state_dir;
  char *control_socket; /* default <state_dir>/control.sock */
  enum vm_log_level log_level;
  struct vm_module_config *modules;
  int nmodules;
};

#define VM_DEFAULT_STATE_DIR "/var/lib/vmodule"


/* Parses a JSON document. On error returns -1 with one line in err naming the key. */
int vm_config_parse(struct vm_config *cfg, const char *json, char *err, size_t errlen);
int vm_config_load(struct vm_config *cfg, const char *path, char *err, size_t errlen);
/* Builds a one-module config from command-line values (NULL/0 = default). */
int vm_config_single(struct vm_config *cfg, const char *dialect, const char *link,
                     const char *state_dir, long baud, const char *tcp, char *err, size_t errlen);
void vm_config_free(struct vm_config *cfg);
/* Names, pty_link and unix_listen paths must be unique (config_unique.c):
 * returns 0, or -1 with one line naming both modules. */
int vm_config_check_unique(const struct vm_config *cfg, char *err, size_t errlen);
/* Sets control_socket to <state_dir>/control.sock unless given; -1 on ENOMEM. */
int vm_config_default_control(struct vm_config *cfg);
/* "HOST:PORT" -> host, port. Returns 0 or -1. */
int vm_config_parse_hostport(const char *s, char **host, int *port);

#endif
