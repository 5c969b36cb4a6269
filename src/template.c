/* template.c - placeholders of templated module entries (template.h): one
 * pass over the string, each {...} checked and replaced; the dialect object
 * of a templated entry is expanded value by value. */
#include "vmodule/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMPL_HELP "use {n}, {n:W} or {n:0W} with W 1 to 10, {{ or }} for a brace"

/* The width of a placeholder's body ("n" 0, "n:3" and "n:03" 3), or -1. */
static int tmpl_width(const char *body, size_t len) {
  if (len == 1 && body[0] == 'n') return 0;
  if (len < 3 || body[0] != 'n' || body[1] != ':') return -1;
  const char *d = body + 2;
  size_t dl = len - 2;
  if (dl > 1 && d[0] == '0') d++, dl--; /* {n:03}: the printf spelling */
  if (dl > 2 || d[0] == '0') return -1;
  int w = 0;
  for (size_t i = 0; i < dl; i++) {
    if (d[i] < '0' || d[i] > '9') return -1;
    w = w * 10 + (d[i] - '0');
  }
  return w >= 1 && w <= VM_TEMPLATE_WIDTH_MAX ? w : -1;
}

int vm_template_expand(const char *tmpl, long n, char **out, char *err, size_t errlen) {
  *out = NULL;
  size_t cap = strlen(tmpl) + 1, len = 0;
  for (const char *p = tmpl; (p = strchr(p, '{')); p++) cap += 24; /* each digit run fits */
  char *o = malloc(cap);
  if (!o) return snprintf(err, errlen, "out of memory"), -1;
  for (const char *p = tmpl; *p; p++) {
    if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
      o[len++] = *p++;
      continue;
    }
    if (*p == '}') {
      snprintf(err, errlen, "a lone \"}\" (%s)", TMPL_HELP);
      free(o);
      return -1;
    }
    if (*p != '{') {
      o[len++] = *p;
      continue;
    }
    const char *end = strchr(p, '}');
    int w = end ? tmpl_width(p + 1, (size_t)(end - p - 1)) : -1;
    if (w < 0) {
      if (end)
        snprintf(err, errlen, "unknown placeholder \"%.*s\" (%s)",
                 (int)(end - p + 1 > 40 ? 40 : end - p + 1), p, TMPL_HELP);
      else
        snprintf(err, errlen, "unclosed \"{\" (%s)", TMPL_HELP);
      free(o);
      return -1;
    }
    len += (size_t)snprintf(o + len, cap - len, "%0*ld", w, n);
    p = end;
  }
  o[len] = '\0';
  *out = o;
  return 0;
}

/* Appends ".key" or "[i]" to path[len..cap); returns the new length. */
static size_t tmpl_path(char *path, size_t cap, size_t len, const char *key, int idx) {
  int k = key ? snprintf(path + len, cap - len, ".%s", key)
              : snprintf(path + len, cap - len, "[%d]", idx);
  size_t end = len + (k > 0 ? (size_t)k : 0);
  return end < cap ? end : cap - 1;
}

static int tmpl_json(cJSON *node, long n, char *path, size_t cap, size_t len, char *err,
                     size_t errlen) {
  if (cJSON_IsString(node) && node->valuestring && strpbrk(node->valuestring, "{}")) {
    char *s, why[160];
    if (vm_template_expand(node->valuestring, n, &s, why, sizeof why))
      return snprintf(err, errlen, "%s: %s", path, why), -1;
    cJSON_free(node->valuestring); /* the default hooks: malloc and free */
    node->valuestring = s;
    return 0;
  }
  int idx = 0;
  for (cJSON *c = node->child; c; c = c->next, idx++) {
    size_t l = tmpl_path(path, cap, len, cJSON_IsObject(node) ? c->string : NULL, idx);
    if (tmpl_json(c, n, path, cap, l, err, errlen)) return -1;
    path[len] = '\0';
  }
  return 0;
}

int vm_template_json(cJSON *node, long n, const char *where, char *err, size_t errlen) {
  char path[256];
  int l = snprintf(path, sizeof path, "%s", where);
  return tmpl_json(node, n, path, sizeof path, l > 0 && (size_t)l < sizeof path ? (size_t)l : 0,
                   err, errlen);
}
