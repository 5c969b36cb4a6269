/* vmodulectl.c - the control client of vmoduled (README "Control socket"):
 * turns its command line into one JSON request on the daemon's control
 * socket and prints the reply, readable by default, as received with
 * --json. Exit status: 0 success, 1 the daemon refused (or a wait timed
 * out, or the daemon cannot be reached), 2 a usage error. A plain blocking
 * client: it is a short-lived command, not part of the daemon's loop. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "vmodule/statedir.h"

struct verb {
  const char *name;
  int min_args, max_args; /* after the module (or after the verb when !module) */
  bool module;
  const char *usage;
};

static const struct verb VERBS[] = {
    {"list", 0, 0, false, "list"},
    {"status", 0, 0, true, "status MODULE"},
    {"power", 1, 1, true, "power MODULE off|on|cycle"},
    {"reboot", 0, 0, true, "reboot MODULE"},
    {"wifi", 1, 1, true, "wifi MODULE down|up"},
    {"smartconfig", 1, 2, true, "smartconfig MODULE SSID PASSWORD|stop"},
    {"cell", 1, 2, true, "cell MODULE deregister|register|signal N|sim-out|sim-in|datacall-drop"},
    {"net", 1, 2, true, "net MODULE down|up|reset|blackhole|delay MS|dns-fail|dns-ok"},
    {"serial", 1, 2, true, "serial MODULE drop PPM|corrupt PPM|clear|unplug|plug"},
    {"urc", 1, 1, true, "urc MODULE TEXT"},
    {"trace", 0, 1, true, "trace MODULE [-f]"},
    {"wait", 1, 1, true, "wait MODULE REGEX [--timeout S]"},
    {"events", 0, 1, false, "events [-f]"},
    {"metrics", 0, 0, false, "metrics"},
};
#define NVERBS (sizeof VERBS / sizeof VERBS[0])

static void usage(FILE *f) {
  fprintf(f, "usage: vmodulectl [-s SOCKET] [--json] VERB [MODULE] [ARGS...]\n\n");
  for (size_t i = 0; i < NVERBS; i++) fprintf(f, "  %s\n", VERBS[i].usage);
  fprintf(f,
          "\n  -s, --socket PATH   the daemon's control socket (default $VMODULE_CONTROL, else "
          "control.sock\n"
          "                      in the daemon's default state directory: %s when\n"
          "                      writable, else $XDG_STATE_HOME/vmodule or ~/.local/state/vmodule)\n"
          "  -j, --json          print the daemon's replies as JSON lines\n"
          "  -t, --timeout S     wait: give up after S seconds (default 30)\n"
          "  -h, --help          this text\n"
          "Exit status: 0 done, 1 refused or timed out, 2 usage error.\n",
          VM_DEFAULT_STATE_DIR);
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "vmodulectl: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see --help)\n");
  return 2;
}

/* ---- the connection ------------------------------------------------------ */

static int connect_socket(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int dirfd = -1;
  if (strlen(path) < sizeof sa.sun_path) {
    memcpy(sa.sun_path, path, strlen(path) + 1);
  } else { /* too long for sun_path: through the directory's descriptor */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    dirfd = dir ? open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    free(dir);
    if (dirfd < 0) return -1;
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", dirfd,
                     slash ? slash + 1 : path);
    if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
      close(dirfd);
      errno = ENAMETOOLONG;
      return -1;
    }
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    fd = -1;
    errno = e;
  }
  if (dirfd >= 0) close(dirfd);
  return fd;
}

struct reader {
  int fd;
  char *buf;
  size_t len, cap;
};

/* The next line (NUL-terminated, without '\n'), NULL at end of stream. */
static char *read_line(struct reader *r, size_t *consumed) {
  for (;;) {
    char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
    if (nl) {
      *nl = '\0';
      *consumed = (size_t)(nl - r->buf) + 1;
      return r->buf;
    }
    if (r->cap - r->len < 4096) {
      size_t cap = r->cap ? r->cap * 2 : 65536;
      char *nb = realloc(r->buf, cap);
      if (!nb) return NULL;
      r->buf = nb;
      r->cap = cap;
    }
    ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return NULL;
    r->len += (size_t)n;
  }
}

static void line_done(struct reader *r, size_t consumed) {
  memmove(r->buf, r->buf + consumed, r->len - consumed);
  r->len -= consumed;
}

static int send_all(int fd, const char *s, size_t n) {
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

/* ---- readable output ----------------------------------------------------- */

static void print_value(const cJSON *v) {
  if (cJSON_IsString(v)) {
    printf("%s", v->valuestring);
  } else if (cJSON_IsNumber(v)) {
    if (v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15)
      printf("%.0f", v->valuedouble);
    else
      printf("%g", v->valuedouble);
  } else {
    char *s = cJSON_PrintUnformatted(v);
    printf("%s", s ? s : "");
    free(s);
  }
}

/* "key: value" lines, nested objects as "outer.inner: value". */
static void print_object(const cJSON *o, const char *prefix) {
  const cJSON *it;
  cJSON_ArrayForEach(it, o) {
    char key[256];
    snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", it->string);
    if (cJSON_IsObject(it)) {
      print_object(it, key);
      continue;
    }
    printf("%s: ", key);
    print_value(it);
    printf("\n");
  }
}

static void print_list(const cJSON *arr) {
  const cJSON *m;
  printf("%-20s %-8s %-8s %s\n", "NAME", "DIALECT", "POWER", "LINK");
  cJSON_ArrayForEach(m, arr) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "name");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "dialect");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(m, "power");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(m, "link");
    if (!cJSON_IsString(l)) l = cJSON_GetObjectItemCaseSensitive(m, "unix"); /* no PTY */
    printf("%-20s %-8s %-8s %s\n", cJSON_IsString(n) ? n->valuestring : "?",
           cJSON_IsString(d) ? d->valuestring : "?", cJSON_IsString(p) ? p->valuestring : "?",
           cJSON_IsString(l) ? l->valuestring : "-");
  }
}

/* An event: "<time> <module> <kind> key=value ..." */
static void print_event(const cJSON *e) {
  const cJSON *it;
  const char *t = NULL, *m = "-", *k = "?";
  cJSON_ArrayForEach(it, e) {
    if (!cJSON_IsString(it)) continue;
    if (!strcmp(it->string, "time")) t = it->valuestring;
    if (!strcmp(it->string, "module")) m = it->valuestring;
    if (!strcmp(it->string, "kind")) k = it->valuestring;
  }
  printf("%s %s %s", t ? t : "-", m, k);
  cJSON_ArrayForEach(it, e) {
    if (!strcmp(it->string, "time") || !strcmp(it->string, "module") ||
        !strcmp(it->string, "kind"))
      continue;
    printf(" %s=", it->string);
    print_value(it);
  }
  printf("\n");
}

static void print_result(const char *verb, const cJSON *result) {
  if (!strcmp(verb, "list")) {
    print_list(result);
  } else if (!strcmp(verb, "status")) {
    print_object(result, "");
  } else if (!strcmp(verb, "metrics") && cJSON_IsString(result)) {
    fputs(result->valuestring, stdout);
  } else if (!strcmp(verb, "trace")) {
    const cJSON *l;
    cJSON_ArrayForEach(l, result) if (cJSON_IsString(l)) printf("%s\n", l->valuestring);
  } else if (!strcmp(verb, "events")) {
    const cJSON *e;
    cJSON_ArrayForEach(e, result) print_event(e);
  }
  /* fault verbs and wait: nothing to say; the exit status says it */
}

/* A stream line: {"trace": "..."} or an event object. */
static void print_stream(const char *verb, const cJSON *o) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "trace");
  if (!strcmp(verb, "trace") && cJSON_IsString(t))
    printf("%s\n", t->valuestring);
  else
    print_event(o);
}

/* ---- main ---------------------------------------------------------------- */

/* control.sock in the state directory a daemon started without --state-dir
 * or --control would use (statedir.c); kept for the process's life. */
static const char *default_socket(void) {
  static char *path;
  char *dir = vm_statedir_default(NULL);
  if (dir && (path = malloc(strlen(dir) + sizeof "/control.sock")))
    sprintf(path, "%s/control.sock", dir);
  free(dir);
  return path;
}

static const struct verb *find_verb(const char *name) {
  for (size_t i = 0; i < NVERBS; i++)
    if (!strcmp(VERBS[i].name, name)) return &VERBS[i];
  return NULL;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"socket", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
      {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *sock = getenv("VMODULE_CONTROL");
  bool json = false;
  double timeout = -1;
  int c;
  opterr = 0;
  /* "+": options end at the verb; "--timeout" may follow wait's REGEX (see below) */
  while ((c = getopt_long(argc, argv, "+s:jt:h", opts, NULL)) != -1) {
    switch (c) {
    case 's': sock = optarg; break;
    case 'j': json = true; break;
    case 't': {
      char *end;
      timeout = strtod(optarg, &end);
      if (*end || end == optarg || !(timeout >= 0 && timeout <= 86400))
        return usage_error("--timeout: seconds between 0 and 86400, got \"%s\"", optarg);
      break;
    }
    case 'h': usage(stdout); return 0;
    default: return usage_error("unknown option or missing value: %s", argv[optind - 1]);
    }
  }
  if (!sock || !sock[0]) sock = default_socket();
  if (!sock) return usage_error("%s", "out of memory");
  if (optind >= argc) return usage_error("%s", "expected a verb");
  const struct verb *v = find_verb(argv[optind]);
  if (!v) return usage_error("unknown verb \"%s\"", argv[optind]);
  char **rest = argv + optind + 1;
  int nrest = argc - optind - 1;
  /* wait MODULE REGEX --timeout S: the option after the words too */
  if (!strcmp(v->name, "wait") && nrest >= 2 &&
      (!strcmp(rest[nrest - 2], "--timeout") || !strcmp(rest[nrest - 2], "-t"))) {
    char *end;
    timeout = strtod(rest[nrest - 1], &end);
    if (*end || end == rest[nrest - 1] || !(timeout >= 0 && timeout <= 86400))
      return usage_error("--timeout: seconds between 0 and 86400, got \"%s\"", rest[nrest - 1]);
    nrest -= 2;
  }
  if (v->module && nrest < 1) return usage_error("usage: vmodulectl %s", v->usage);
  const char *module = v->module ? rest[0] : NULL;
  char **words = v->module ? rest + 1 : rest;
  int nwords = v->module ? nrest - 1 : nrest;
  if (nwords < v->min_args || nwords > v->max_args)
    return usage_error("usage: vmodulectl %s", v->usage);
  bool follow = nwords == 1 && !strcmp(words[0], "-f") &&
                (!strcmp(v->name, "trace") || !strcmp(v->name, "events"));
  if ((!strcmp(v->name, "trace") || !strcmp(v->name, "events")) && nwords == 1 && !follow)
    return usage_error("usage: vmodulectl %s", v->usage);

  cJSON *req = cJSON_CreateObject();
  cJSON_AddStringToObject(req, "cmd", v->name);
  if (module) cJSON_AddStringToObject(req, "module", module);
  if (nwords) {
    cJSON *a = cJSON_AddArrayToObject(req, "args");
    for (int i = 0; i < nwords; i++) cJSON_AddItemToArray(a, cJSON_CreateString(words[i]));
  }
  if (!strcmp(v->name, "wait") && timeout >= 0)
    cJSON_AddNumberToObject(req, "timeout_ms", floor(timeout * 1000));
  char *text = cJSON_PrintUnformatted(req);
  cJSON_Delete(req);

  int fd = connect_socket(sock);
  if (fd < 0) {
    fprintf(stderr, "vmodulectl: cannot reach the daemon at %s: %s\n", sock, strerror(errno));
    free(text);
    return 1;
  }
  size_t tl = strlen(text);
  text[tl] = '\n'; /* cJSON's buffer has its NUL there: replaced, length known */
  int rc = send_all(fd, text, tl + 1);
  free(text);
  if (rc < 0) {
    fprintf(stderr, "vmodulectl: %s: %s\n", sock, strerror(errno));
    close(fd);
    return 1;
  }
  struct reader r = {.fd = fd};
  size_t used;
  char *line = read_line(&r, &used);
  if (!line) {
    fprintf(stderr, "vmodulectl: the daemon closed the connection\n");
    close(fd);
    return 1;
  }
  cJSON *reply = cJSON_Parse(line);
  const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
  if (json) printf("%s\n", line);
  line_done(&r, used);
  int status = 0;
  if (!cJSON_IsBool(ok) || !cJSON_IsTrue(ok)) {
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(reply, "error");
    if (!json)
      fprintf(stderr, "vmodulectl: %s\n", cJSON_IsString(err) ? err->valuestring : "bad reply");
    status = 1;
  } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "stream"))) {
    fflush(stdout);
    while ((line = read_line(&r, &used))) {
      if (json) {
        printf("%s\n", line);
      } else {
        cJSON *o = cJSON_Parse(line);
        if (o) print_stream(v->name, o);
        cJSON_Delete(o);
      }
      fflush(stdout);
      line_done(&r, used);
    }
  } else if (!json) {
    print_result(v->name, cJSON_GetObjectItemCaseSensitive(reply, "result"));
  }
  cJSON_Delete(reply);
  free(r.buf);
  close(fd);
  return status;
}
