/* statedir.h - the default state directory, one rule for vmoduled and
 * vmodulectl (which links src/statedir.c alone), so that the client finds
 * the control socket of a daemon started without --state-dir. */
#ifndef VMODULE_STATEDIR_H
#define VMODULE_STATEDIR_H

#include <stdbool.h>

#define VM_DEFAULT_STATE_DIR "/var/lib/vmodule"

/* VM_DEFAULT_STATE_DIR when this process may write it (or create it: the
 * nearest existing ancestor is writable); otherwise, for a user who may not,
 * $XDG_STATE_HOME/vmodule (an absolute XDG_STATE_HOME only, as the XDG spec
 * says) or else ~/.local/state/vmodule ($HOME, else the passwd entry).
 * Nothing is created here (the store makes the directories 0700). Returns a
 * malloc'd path, NULL when out of memory; *fallback (may be NULL) tells
 * whether the user's directory was chosen. */
char *vm_statedir_default(bool *fallback);

#endif
