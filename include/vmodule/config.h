/* config.h - the daemon configuration (JSON file or command line), validated
 * completely before anything is created. */
#ifndef VMODULE_CONFIG_H
#define VMODULE_CONFIG_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "vmodule/log.h"
#include "vmodule/statedir.h"

struct vm_dialect;
struct vm_fault_sched;

/* "power_on": when power is first applied to the module (module.c). */
enum vm_power_on {
  VM_POWER_FIRST_OPEN = 0, /* the MCU opens the PTY or connects to the TCP endpoint */
  VM_POWER_FIRST_BYTE,     /* the first byte from the MCU (lost, as while booting) */
  VM_POWER_START,          /* the daemon starts */
};

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
  enum vm_power_on power_on;
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
  bool state_dir_fallback; /* not given: the user's, VM_DEFAULT_STATE_DIR being read-only */
  char *control_socket; /* default <state_dir>/control.sock */
  enum vm_log_level log_level;
  struct vm_module_config *modules;
  int nmodules;
};

/* The one module of the command-line form (NULL / -1: the default). */
struct vm_cli_module {
  const char *dialect, *link, *state_dir, *tcp, *power_on;
  long baud;
  const cJSON *dialect_json; /* the dialect object (--wifi access points), or NULL */
};


/* Parses a JSON document. On error returns -1 with one line in err naming the key. */
int vm_config_parse(struct vm_config *cfg, const char *json, char *err, size_t errlen);
int vm_config_load(struct vm_config *cfg, const char *path, char *err, size_t errlen);
/* Builds a one-module config from command-line values. */
int vm_config_single(struct vm_config *cfg, const struct vm_cli_module *cli, char *err,
                     size_t errlen);
/* "first-open", "first-byte", "start" -> *out; -1 for anything else. */
int vm_config_parse_power_on(const char *s, enum vm_power_on *out);
void vm_config_free(struct vm_config *cfg);
/* Names, pty_link and unix_listen paths must be unique (config_unique.c):
 * returns 0, or -1 with one line naming both modules. */
int vm_config_check_unique(const struct vm_config *cfg, char *err, size_t errlen);
/* Sets control_socket to <state_dir>/control.sock unless given; -1 on ENOMEM. */
int vm_config_default_control(struct vm_config *cfg);
/* "HOST:PORT" -> host, port. Returns 0 or -1. */
int vm_config_parse_hostport(const char *s, char **host, int *port);

#endif
