/* json.h - reading numbers out of cJSON documents without undefined
 * behaviour: cJSON keeps a number as a double (valueint is a saturated,
 * truncated copy), and converting a double outside the target type's range
 * (1e300 to an int64) is undefined. Every number the daemon takes from the
 * network or a file goes through here. */
#ifndef VMODULE_JSON_H
#define VMODULE_JSON_H

#include <stdbool.h>
#include <cjson/cJSON.h>

/* The widest range vm_json_int() takes: every integer in it is a double. */
#define VM_JSON_INT_MAX (1LL << 53)

/* Whether v is a number with no fraction within [lo, hi] (both within
 * +-VM_JSON_INT_MAX); *out (may be NULL) gets it. The
 * range is checked on the double, before any conversion. */
bool vm_json_int(const cJSON *v, long long lo, long long hi, long long *out);

#endif
