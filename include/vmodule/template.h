/* template.h - the module templates of the configuration ("count": N): the
 * placeholders of a templated entry's strings, replaced by the module's
 * number n.
 *
 *   {n}      n in decimal                     tc{n}    -> tc7
 *   {n:W}    n zero-padded to W digits        tc{n:3}  -> tc007
 *   {n:0W}   the same (printf-style spelling) tc{n:03} -> tc007
 *   {{  }}   a literal { and }
 *
 * W is 1 to 10 (a wider n is printed whole). Anything else between braces,
 * an unclosed {, a lone } is an error. A string without braces is copied. */
#ifndef VMODULE_TEMPLATE_H
#define VMODULE_TEMPLATE_H

#include <stddef.h>
#include <cjson/cJSON.h>

#define VM_TEMPLATE_WIDTH_MAX 10

/* *out = tmpl with n substituted (malloc'd). Returns 0, or -1 with the
 * reason in err (the caller names the key); *out is then NULL. */
int vm_template_expand(const char *tmpl, long n, char **out, char *err, size_t errlen);

/* Expands, in place, every string value under node (object members and
 * array elements, recursively; member names are kept). Returns 0, or -1
 * with err = "PATH: reason", PATH the value's key path below where
 * ("tencent.device_name", "me3630.boot_urcs[1]"). */
int vm_template_json(cJSON *node, long n, const char *where, char *err, size_t errlen);

#endif
