/* statedir.c - the default state directory (statedir.h): the system one
 * for root and for a service user that owns it, the XDG state directory for
 * anyone else. Linked into vmoduled and vmodulectl; no logging here (the
 * client has no log), the daemon logs the choice. Startup-only code: the
 * passwd lookup may block, and runs before any loop does. */
#include "vmodule/statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether this process (its effective ids) may write dir, or create it:
 * a missing directory is judged by its nearest existing ancestor. */
static bool dir_writable(const char *dir) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return false;
  for (;;) {
    if (faccessat(AT_FDCWD, path, W_OK | X_OK, AT_EACCESS) == 0) return true;
    if (errno != ENOENT) return false;
    char *slash = strrchr(path, '/');
    if (!slash) return false;
    if (slash == path) slash[1] = '\0'; /* "/var" -> "/" */
    else *slash = '\0';
  }
}

/* $HOME when it is an absolute path, else the passwd entry's home. */
static const char *home_dir(void) {
  const char *home = getenv("HOME");
  if (home && home[0] == '/') return home;
  struct passwd *pw = getpwuid(geteuid());
  return pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
}

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s%s", a, b);
  return s;
}

char *vm_statedir_default(bool *fallback) {
  const char *xdg = getenv("XDG_STATE_HOME"), *home;
  bool user = !dir_writable(VM_DEFAULT_STATE_DIR);
  char *dir = NULL;
  if (user && xdg && xdg[0] == '/') dir = join(xdg, "/vmodule");
  else if (user && (home = home_dir())) dir = join(home, "/.local/state/vmodule");
  else {
    user = false; /* nowhere else to go: the system directory, and its error */
    dir = strdup(VM_DEFAULT_STATE_DIR);
  }
  if (fallback) *fallback = user;
  return dir;
}
