/* config.c - the JSON configuration (and the one-module command-line form)
 * parsed into struct vm_config. Everything is validated before the daemon
 * creates anything; the first problem is reported as one line naming the key
 * ("modules[1].baud: must be an integer >= 0"). A key given twice in any
 * object is refused before any parser looks; numbers go through
 * vm_json_int, which checks them before any cast. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "vmodule/json.h"
#include "vmodule/config.h"
#include "vmodule/dialect.h"
#include "vmodule/fault.h"
#include "vmodule/template.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

int vm_config_parse_hostport(const char *s, char **host, int *port) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s) return -1;
  char *end;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (errno || *end || end == colon + 1 || p < 0 || p > 65535) return -1;
  const char *h = s;
  size_t hl = (size_t)(colon - s);
  if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') { /* [::1]:port */
    h++;
    hl -= 2;
  }
  *host = strndup(h, hl);
  *port = (int)p;
  return *host ? 0 : -1;
}

static const char *const POWER_ON_NAMES[] = {
    [VM_POWER_FIRST_OPEN] = "first-open", [VM_POWER_FIRST_BYTE] = "first-byte",
    [VM_POWER_START] = "start"};

int vm_config_parse_power_on(const char *s, enum vm_power_on *out) {
  for (int i = 0; i < (int)(sizeof POWER_ON_NAMES / sizeof *POWER_ON_NAMES); i++)
    if (!strcmp(s, POWER_ON_NAMES[i])) return *out = (enum vm_power_on)i, 0;
  return -1;
}

static bool valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 32) return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return false;
  return true;
}

static int get_uint(const cJSON *v, const char *where, long max, long *out, char *err,
                    size_t errlen) {
  long long n;
  if (!vm_json_int(v, 0, max, &n)) return ERR("%s: must be an integer between 0 and %ld", where, max);
  *out = (long)n;
  return 0;
}

static int get_str(const cJSON *v, const char *where, char **out, char *err, size_t errlen) {
  if (!cJSON_IsString(v) || !v->valuestring[0]) return ERR("%s: must be a non-empty string", where);
  free(*out); /* a repeated key */
  *out = strdup(v->valuestring);
  return *out ? 0 : ERR("%s: out of memory", where);
}

static void module_defaults(struct vm_module_config *m) {
  m->baud = 115200;
  m->echo = true;
  m->boot_ms = 500;
  m->power_on = VM_POWER_FIRST_OPEN;
  m->tx_buffer = 64 * 1024;
  m->tmpl_n = -1;
}

/* A string key's value; in a templated entry (n >= 0) with n substituted. */
static int get_tstr(const cJSON *v, const char *where, long n, char **out, char *err,
                    size_t errlen) {
  if (get_str(v, where, out, err, errlen)) return -1;
  if (n < 0) return 0;
  char *s, why[160];
  if (vm_template_expand(*out, n, &s, why, sizeof why)) return ERR("%s: %s", where, why);
  free(*out);
  *out = s;
  return 0;
}

/* Appends ".key" (nothing before the first key) or "[i]" to the path of
 * length len in path[cap]; returns the new length (clipped to the buffer). */
static size_t path_add(char *path, size_t cap, size_t len, const char *key, int idx) {
  int n = key ? snprintf(path + len, cap - len, "%s%s", len ? "." : "", key)
              : snprintf(path + len, cap - len, "[%d]", idx);
  size_t end = len + (n > 0 ? (size_t)n : 0);
  return end < cap ? end : cap - 1;
}

/* Finds the first object member, anywhere under node, whose name repeats an
 * earlier member of the same object (cJSON keeps both; lookups would see the
 * first and a loop both). Its path goes to path; false when there is none. */
static bool find_duplicate(const cJSON *node, char *path, size_t cap, size_t len) {
  int idx = 0;
  for (const cJSON *c = node->child; c; c = c->next, idx++) {
    bool member = cJSON_IsObject(node) && c->string;
    size_t l = path_add(path, cap, len, member ? c->string : NULL, idx);
    if (member)
      for (const cJSON *p = node->child; p != c; p = p->next)
        if (!strcmp(p->string, c->string)) return true;
    if (find_duplicate(c, path, cap, l)) return true;
  }
  path[len] = '\0';
  return false;
}

/* "faults": [{"at_ms": N, "do": "..."} | {"after": "REGEX", "do": "..."}]; the
 * "do" words are checked once the dialect's config is known (check_faults). */
static int parse_faults(const cJSON *arr, const char *where, struct vm_module_config *m,
                        char *err, size_t errlen) {
  if (!cJSON_IsArray(arr)) return ERR("%s: must be an array", where);
  int n = cJSON_GetArraySize(arr);
  if (n > 1000) return ERR("%s: at most 1000 entries", where);
  vm_fault_sched_free(m->faults, m->nfaults); /* a repeated key */
  m->faults = calloc((size_t)(n ? n : 1), sizeof *m->faults);
  m->nfaults = 0;
  if (!m->faults) return ERR("%s: out of memory", where);
  m->fault_injection = true;
  const cJSON *e;
  cJSON_ArrayForEach(e, arr) {
    struct vm_fault_sched *f = &m->faults[m->nfaults++];
    f->at_ms = -1;
    char w[192];
    snprintf(w, sizeof w, "%s[%d]", where, m->nfaults - 1);
    if (!cJSON_IsObject(e)) return ERR("%s: must be an object", w);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(e, "at_ms");
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(e, "after");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(e, "do");
    const cJSON *k;
    cJSON_ArrayForEach(k, e) {
      if (strcmp(k->string, "at_ms") && strcmp(k->string, "after") && strcmp(k->string, "do"))
        return ERR("%s.%s: unknown key (at_ms, after, do)", w, k->string);
    }
    if (!at == !after) return ERR("%s: needs exactly one of at_ms and after", w);
    if (at) {
      long long v;
      if (!vm_json_int(at, 0, 86400000, &v))
        return ERR("%s.at_ms: must be an integer between 0 and 86400000", w);
      f->at_ms = (long)v;
    } else {
      regex_t re;
      if (!cJSON_IsString(after) || !after->valuestring[0])
        return ERR("%s.after: must be a non-empty string", w);
      if (regcomp(&re, after->valuestring, REG_EXTENDED | REG_NOSUB))
        return ERR("%s.after: not a valid POSIX extended regex", w);
      regfree(&re);
      f->after = strdup(after->valuestring);
    }
    if (!cJSON_IsString(act) || !act->valuestring[0])
      return ERR("%s.do: required, a fault as vmodulectl takes it (e.g. \"net down\")", w);
    f->action = strdup(act->valuestring);
    if ((after && !f->after) || !f->action) return ERR("%s: out of memory", w);
  }
  return 0;
}

static int check_faults(const struct vm_module_config *m, const char *base, char *err,
                        size_t errlen) {
  for (int i = 0; i < m->nfaults; i++) {
    char buf[1024], *argv[VM_FAULT_MAX_WORDS], msg[160];
    snprintf(buf, sizeof buf, "%s", m->faults[i].action);
    int argc = vm_fault_split(buf, argv, VM_FAULT_MAX_WORDS);
    if (argc <= 0) {
      snprintf(msg, sizeof msg, "too many words");
      return ERR("%sfaults[%d].do: %s", base, i, msg);
    }
    if (vm_fault_check(m, argc, argv, msg, sizeof msg))
      return ERR("%sfaults[%d].do: %s", base, i, msg);
  }
  return 0;
}

/* "tcp_listen": "HOST:PORT"; module n of a templated entry (at position pos
 * in it) listens on PORT + pos (port 0 stays "any"). */
static int parse_tcp_listen(const cJSON *it, const char *where, long n, long pos,
                            struct vm_module_config *m, char *err, size_t errlen) {
  free(m->tcp_host); /* a repeated key */
  m->tcp_host = NULL;
  if (cJSON_IsNull(it)) return 0;
  char *s = NULL;
  if (!cJSON_IsString(it) || !it->valuestring[0]) return ERR("%s: must be \"HOST:PORT\"", where);
  if (get_tstr(it, where, n, &s, err, errlen)) {
    free(s);
    return -1;
  }
  if (vm_config_parse_hostport(s, &m->tcp_host, &m->tcp_port)) {
    free(s);
    return ERR("%s: must be \"HOST:PORT\"", where);
  }
  free(s);
  if (n >= 0 && m->tcp_port && m->tcp_port + pos > 65535)
    return ERR("%s: port %ld (%d + %ld) is past 65535", where, m->tcp_port + pos, m->tcp_port,
               pos);
  if (n >= 0 && m->tcp_port) m->tcp_port += (int)pos;
  return 0;
}

/* Parses one module: entry idx of "modules"; of a templated entry the
 * module n (>= 0) at position pos, its strings expanded (template.h). */
static int parse_module(const cJSON *obj, int idx, long n, long pos, struct vm_module_config *m,
                        char *err, size_t errlen) {
  char where[160], who[64], base[72];
  module_defaults(m);
  m->entry = idx;
  m->tmpl_n = n;
  if (!cJSON_IsObject(obj)) return ERR("modules[%d]: must be an object", idx);

  const cJSON *d = cJSON_GetObjectItemCaseSensitive(obj, "dialect");
  if (!cJSON_IsString(d)) return ERR("modules[%d].dialect: required (%s)", idx, vm_dialect_names());
  m->dialect = vm_dialect_find(d->valuestring);
  if (!m->dialect)
    return ERR("modules[%d].dialect: unknown dialect \"%s\" (%s)", idx, d->valuestring,
               vm_dialect_names());

  /* the name first: the errors of a templated module name it */
  const cJSON *nm = cJSON_GetObjectItemCaseSensitive(obj, "name");
  snprintf(where, sizeof where, "modules[%d].name", idx);
  if (!nm) return ERR("%s: required", where);
  if (get_tstr(nm, where, n, &m->name, err, errlen)) return -1;
  if (!valid_name(m->name)) {
    if (n >= 0)
      return ERR("%s: \"%.40s\" (n=%ld): 1 to 32 characters among A-Z a-z 0-9 _ - .", where,
                 m->name, n);
    return ERR("%s: 1 to 32 characters among A-Z a-z 0-9 _ - .", where);
  }
  if (n < 0) snprintf(who, sizeof who, "modules[%d]", idx);
  else snprintf(who, sizeof who, "module \"%s\"", m->name);
  snprintf(base, sizeof base, "%s%s", who, n < 0 ? "." : ": ");

  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    const char *k = it->string;
    long v;
    snprintf(where, sizeof where, "%s%s", base, k);
    if (!strcmp(k, "name") || !strcmp(k, "dialect") || !strcmp(k, "count") ||
        !strcmp(k, "first")) {
      continue; /* done before, or by parse_modules */
    } else if (!strcmp(k, "pty_link")) {
      if (get_tstr(it, where, n, &m->pty_link, err, errlen)) return -1;
    } else if (!strcmp(k, "unix_listen")) {
      if (get_tstr(it, where, n, &m->unix_path, err, errlen)) return -1;
      if (strlen(m->unix_path) >= sizeof ((struct sockaddr_un *)0)->sun_path)
        return ERR("%s: at most %zu bytes (a unix socket path)", where,
                   sizeof ((struct sockaddr_un *)0)->sun_path - 1);
    } else if (!strcmp(k, "tcp_listen")) {
      if (parse_tcp_listen(it, where, n, pos, m, err, errlen)) return -1;
    } else if (!strcmp(k, "baud")) {
      if (get_uint(it, where, 10000000, &v, err, errlen)) return -1;
      m->baud = (unsigned)v;
    } else if (!strcmp(k, "echo")) {
      if (!cJSON_IsBool(it)) return ERR("%s: must be true or false", where);
      m->echo = cJSON_IsTrue(it);
    } else if (!strcmp(k, "trace")) {
      if (get_tstr(it, where, n, &m->trace, err, errlen)) return -1;
    } else if (!strcmp(k, "boot_ms")) {
      if (get_uint(it, where, 60000, &v, err, errlen)) return -1;
      m->boot_ms = (unsigned)v;
    } else if (!strcmp(k, "power_on")) {
      if (!cJSON_IsString(it) || vm_config_parse_power_on(it->valuestring, &m->power_on))
        return ERR("%s: must be \"first-open\", \"first-byte\" or \"start\"", where);
    } else if (!strcmp(k, "tx_buffer")) {
      if (get_uint(it, where, 64L * 1024 * 1024, &v, err, errlen)) return -1;
      if (v < 1024) return ERR("%s: must be at least 1024", where);
      m->tx_buffer = (size_t)v;
    } else if (!strcmp(k, "fault_injection")) {
      if (!cJSON_IsBool(it)) return ERR("%s: must be true or false", where);
      m->fault_injection = m->fault_injection || cJSON_IsTrue(it);
    } else if (!strcmp(k, "faults")) {
      if (parse_faults(it, where, m, err, errlen)) return -1;
    } else if (!strcmp(k, m->dialect->name)) {
      if (!cJSON_IsObject(it)) return ERR("%s: must be an object", where);
      cJSON_Delete(m->dialect_json); /* a repeated key */
      m->dialect_json = cJSON_Duplicate(it, 1);
      if (!m->dialect_json) return ERR("%s: out of memory", where);
      if (n >= 0 && vm_template_json(m->dialect_json, n, where, err, errlen)) return -1;
    } else {
      return ERR("%s: unknown key", where);
    }
  }
  if (!m->pty_link && !m->tcp_host && !m->unix_path)
    return ERR("%spty_link: required without tcp_listen or unix_listen (a module needs a serial "
               "endpoint)", base);
  snprintf(where, sizeof where, "%s%s", base, m->dialect->name);
  if (m->dialect->parse_config(m->dialect_json, where, &m->dialect_conf, err, errlen)) return -1;
  return check_faults(m, base, err, errlen);
}

/* An entry's "count" (-1 without) and "first" (0 without). */
static int entry_count(const cJSON *obj, int idx, long *count, long *first, char *err,
                       size_t errlen) {
  *count = -1;
  *first = 0;
  if (!cJSON_IsObject(obj)) return 0; /* parse_module says so */
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, "count");
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, "first");
  long long v;
  if (c) {
    if (!vm_json_int(c, 1, VM_CONFIG_COUNT_MAX, &v))
      return ERR("modules[%d].count: must be an integer between 1 and %d", idx,
                 VM_CONFIG_COUNT_MAX);
    *count = (long)v;
  }
  if (f) {
    if (!c) return ERR("modules[%d].first: only with count", idx);
    if (!vm_json_int(f, 0, VM_CONFIG_FIRST_MAX, &v))
      return ERR("modules[%d].first: must be an integer between 0 and %ld", idx,
                 VM_CONFIG_FIRST_MAX);
    *first = (long)v;
  }
  return 0;
}

/* Every entry becomes one module, a templated one ("count") count modules. */
static int parse_modules(struct vm_config *cfg, const cJSON *arr, char *err, size_t errlen) {
  if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
    return ERR("modules: must be a non-empty array");
  long total = 0, count, first;
  int idx = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, arr) {
    if (entry_count(it, idx++, &count, &first, err, errlen)) return -1;
    total += count < 0 ? 1 : count;
    if (total > VM_CONFIG_COUNT_MAX)
      return ERR("modules: more than %d modules in all", VM_CONFIG_COUNT_MAX);
  }
  cfg->modules = calloc((size_t)total, sizeof *cfg->modules);
  if (!cfg->modules) return ERR("modules: out of memory");
  idx = 0;
  cJSON_ArrayForEach(it, arr) {
    entry_count(it, idx, &count, &first, err, errlen);
    for (long pos = 0; pos < (count < 0 ? 1 : count); pos++) {
      struct vm_module_config *m = &cfg->modules[cfg->nmodules++]; /* freed even if bad */
      if (parse_module(it, idx, count < 0 ? -1 : first + pos, pos, m, err, errlen)) return -1;
    }
    idx++;
  }
  return vm_config_check_unique(cfg, err, errlen);
}

int vm_config_parse(struct vm_config *cfg, const char *json, char *err, size_t errlen) {
  memset(cfg, 0, sizeof *cfg);
  cfg->log_level = VM_LOG_INFO;
  cJSON *root = cJSON_Parse(json);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    return ERR("config: not valid JSON near \"%.20s\"", at ? at : "");
  }
  int rc = 0;
  char sub[512];
  sub[0] = '\0';
  if (find_duplicate(root, sub, sizeof sub, 0)) {
    rc = ERR("config: %s: duplicate key", sub);
    goto out;
  }
  if (!cJSON_IsObject(root)) {
    rc = ERR("config: the top level must be an object");
    goto out;
  }
  const cJSON *it;
  cJSON_ArrayForEach(it, root) {
    if (!strcmp(it->string, "state_dir")) {
      if (get_str(it, "config: state_dir", &cfg->state_dir, err, errlen)) {
        rc = -1;
        goto out;
      }
    } else if (!strcmp(it->string, "log_level")) {
      if (!cJSON_IsString(it) || vm_log_parse_level(it->valuestring, &cfg->log_level)) {
        rc = ERR("config: log_level: must be one of error, warn, info, debug");
        goto out;
      }
    } else if (!strcmp(it->string, "control_socket")) {
      if (get_str(it, "config: control_socket", &cfg->control_socket, err, errlen)) {
        rc = -1;
        goto out;
      }
    } else if (strcmp(it->string, "modules")) {
      rc = ERR("config: %s: unknown key", it->string);
      goto out;
    }
  }
  if (parse_modules(cfg, cJSON_GetObjectItemCaseSensitive(root, "modules"), sub, sizeof sub)) {
    rc = ERR("config: %s", sub);
    goto out;
  }
  if (!cfg->state_dir) cfg->state_dir = vm_statedir_default(&cfg->state_dir_fallback);
  if (!cfg->state_dir || vm_config_default_control(cfg)) rc = ERR("config: out of memory");
out:
  cJSON_Delete(root);
  return rc;
}

int vm_config_load(struct vm_config *cfg, const char *path, char *err, size_t errlen) {
  memset(cfg, 0, sizeof *cfg);
  FILE *f = fopen(path, "rb");
  if (!f) return ERR("config: cannot open %s: %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 >= cap) {
      cap = cap ? cap * 2 : 16384;
      if (cap > 16 * 1024 * 1024) {
        free(buf);
        fclose(f);
        return ERR("config: %s is too large", path);
      }
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return ERR("config: out of memory");
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    if (n == 0) break;
    len += n;
  }
  fclose(f);
  buf[len] = '\0';
  int rc = vm_config_parse(cfg, buf, err, errlen);
  free(buf);
  return rc;
}

int vm_config_single(struct vm_config *cfg, const struct vm_cli_module *cli, char *err,
                     size_t errlen) {
  memset(cfg, 0, sizeof *cfg);
  cfg->log_level = VM_LOG_INFO;
  if (!cli->dialect) return ERR("--dialect: required without -c (%s)", vm_dialect_names());
  const struct vm_dialect *d = vm_dialect_find(cli->dialect);
  if (!d) return ERR("--dialect: unknown dialect \"%s\" (%s)", cli->dialect, vm_dialect_names());
  if (!cli->link) return ERR("--link: required without -c");
  cfg->modules = calloc(1, sizeof *cfg->modules);
  if (!cfg->modules) return ERR("out of memory");
  cfg->nmodules = 1;
  struct vm_module_config *m = &cfg->modules[0];
  module_defaults(m);
  m->dialect = d;
  m->name = strdup(d->name);
  m->pty_link = strdup(cli->link);
  cfg->state_dir = cli->state_dir ? strdup(cli->state_dir)
                                  : vm_statedir_default(&cfg->state_dir_fallback);
  if (!m->name || !m->pty_link || !cfg->state_dir) return ERR("out of memory");
  if (cli->baud >= 0) m->baud = (unsigned)cli->baud;
  if (cli->tcp && vm_config_parse_hostport(cli->tcp, &m->tcp_host, &m->tcp_port))
    return ERR("--tcp: must be HOST:PORT");
  if (cli->power_on && vm_config_parse_power_on(cli->power_on, &m->power_on))
    return ERR("--power-on: must be first-open, first-byte or start");
  if (vm_config_default_control(cfg)) return ERR("out of memory");
  if (cli->dialect_json && !(m->dialect_json = cJSON_Duplicate(cli->dialect_json, 1)))
    return ERR("out of memory");
  char where[64];
  snprintf(where, sizeof where, "%s", d->name);
  return d->parse_config(m->dialect_json, where, &m->dialect_conf, err, errlen);
}

int vm_config_default_control(struct vm_config *cfg) {
  if (cfg->control_socket) return 0;
  size_t n = strlen(cfg->state_dir) + sizeof "/control.sock";
  if (!(cfg->control_socket = malloc(n))) return -1;
  snprintf(cfg->control_socket, n, "%s/control.sock", cfg->state_dir);
  return 0;
}

void vm_config_free(struct vm_config *cfg) {
  for (int i = 0; i < cfg->nmodules; i++) {
    struct vm_module_config *m = &cfg->modules[i];
    if (m->dialect && m->dialect_conf) m->dialect->free_config(m->dialect_conf);
    cJSON_Delete(m->dialect_json);
    free(m->name);
    free(m->pty_link);
    free(m->tcp_host);
    free(m->unix_path);
    free(m->trace);
    vm_fault_sched_free(m->faults, m->nfaults);
  }
  free(cfg->modules);
  free(cfg->state_dir);
  free(cfg->control_socket);
  memset(cfg, 0, sizeof *cfg);
}
