/* json.c - integers out of cJSON numbers (see json.h). */
#include "vmodule/json.h"

bool vm_json_int(const cJSON *v, long long lo, long long hi, long long *out) {
  if (!cJSON_IsNumber(v)) return false;
  double d = v->valuedouble;
  if (!(d >= (double)lo && d <= (double)hi)) return false; /* NaN fails too */
  long long n = (long long)d; /* in range: defined */
  if ((double)n != d) return false;
  if (out) *out = n;
  return true;
}
