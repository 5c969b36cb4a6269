/* params.c - AT command parameters, parsed the way the ESP-AT core does.
 *
 * The parameter string (everything after "AT+X=") is split on ',' into at
 * most VM_AT_MAX_PARAMS tokens. Each token is classified once here, so
 * dialect handlers only ask typed questions (vm_at_arg_int/str/text) and can
 * tell an omitted parameter from a wrong one, as the real firmware does.
 * Every non-empty token gets a NUL-terminated copy in a->buf (unescaped for
 * quoted strings), and its position in the input is kept so that a trace can
 * redact a secret parameter without re-parsing (vm_at_param_start_any gives
 * the tolerant split for a line the parser rejected). */
#include "vmodule/params.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Parser state for one call. */
struct parse {
  struct vm_at_args *a;
  const char *s;
  size_t len;
  size_t pos;  /* next input byte */
  size_t used; /* bytes of a->buf in use */
  unsigned flags;
};

static bool buf_put(struct parse *ps, char c) {
  if (ps->used >= sizeof ps->a->buf)
    return false;
  ps->a->buf[ps->used++] = c;
  return true;
}

/* Quoted string starting at ps->pos (which holds '"'). Unescapes into a->buf.
 * Returns 0, or -1 if the string is unterminated, is followed by anything but
 * ',' or the end, or does not fit in a->buf. */
static int parse_quoted(struct parse *ps, struct vm_at_param *p) {
  size_t i = ps->pos + 1;
  size_t start = ps->used;
  bool closed = false;

  while (i < ps->len) {
    char c = ps->s[i];
    if (c == '"') {
      closed = true;
      i++;
      break;
    }
    if (c == '\\') {
      /* "\x" is x for any x, including '"': so "abc\" never closes. */
      if (i + 1 >= ps->len)
        return -1;
      c = ps->s[i + 1];
      i += 2;
    } else if (c == ',' && (ps->flags & VM_AT_PARSE_COMMA_SPLITS_QUOTES)) {
      /* ESP8266 core: the comma ends the token, leaving `"a` unterminated. */
      return -1;
    } else {
      i++;
    }
    if (!buf_put(ps, c))
      return -1;
  }
  if (!closed || (i < ps->len && ps->s[i] != ','))
    return -1;
  if (!buf_put(ps, '\0'))
    return -1;

  p->type = VM_AT_P_STR;
  p->str = ps->a->buf + start;
  p->str_len = ps->used - start - 1;
  p->len = i - ps->pos;
  ps->pos = i;
  return 0;
}

/* True if tok[0..n) is -?[0-9]+ and fits a long; stores the value. tok is
 * NUL-terminated at n, so strtol cannot run past the token. */
static bool token_int(const char *tok, size_t n, long *out) {
  size_t i = (n > 0 && tok[0] == '-') ? 1 : 0;
  if (i == n)
    return false;
  for (; i < n; i++)
    if (tok[i] < '0' || tok[i] > '9')
      return false;
  errno = 0;
  long v = strtol(tok, NULL, 10);
  if (errno == ERANGE)
    return false;
  *out = v;
  return true;
}

/* Stores tok[0..n) as an INT or RAW parameter (NUL-terminated copy in buf). */
static int take_literal(struct parse *ps, struct vm_at_param *p, const char *tok, size_t n) {
  if (ps->used + n + 1 > sizeof ps->a->buf)
    return -1;
  char *copy = ps->a->buf + ps->used;
  memcpy(copy, tok, n);
  copy[n] = '\0';
  ps->used += n + 1;
  p->str = copy;
  p->str_len = n;
  p->type = token_int(copy, n, &p->num) ? VM_AT_P_INT : VM_AT_P_RAW;
  return 0;
}

/* Bare token starting at ps->pos: empty (omitted), an integer, or raw text. */
static int parse_bare(struct parse *ps, struct vm_at_param *p) {
  const char *tok = ps->s + ps->pos;
  const char *comma = memchr(tok, ',', ps->len - ps->pos);
  size_t n = comma ? (size_t)(comma - tok) : ps->len - ps->pos;

  p->len = n;
  ps->pos += n;
  if (n == 0) {
    p->type = VM_AT_P_EMPTY;
    return 0;
  }
  /* With the ESP8266 flag, a quote inside a bare token is the tail of a
   * string that an unescaped comma cut in two (`b"` from `"a,b"`). */
  if ((ps->flags & VM_AT_PARSE_COMMA_SPLITS_QUOTES) && memchr(tok, '"', n))
    return -1;
  return take_literal(ps, p, tok, n);
}

/* The last parameter of a command whose last field is "the rest of the
 * line" (max_params): one quoted string spanning to the end is a STR;
 * anything else is the literal text, commas and quotes included. */
static int parse_rest(struct parse *ps, struct vm_at_param *p) {
  size_t pos = ps->pos, used = ps->used;
  if (ps->s[pos] == '"' && parse_quoted(ps, p) == 0 && ps->pos == ps->len)
    return 0;
  ps->pos = pos;
  ps->used = used;
  memset(p, 0, sizeof *p);
  p->off = pos;
  p->len = ps->len - pos;
  ps->pos = ps->len;
  return take_literal(ps, p, ps->s + pos, p->len);
}

int vm_at_parse_params(struct vm_at_args *a, const char *s, size_t len, unsigned flags) {
  return vm_at_parse_params_max(a, s, len, flags, 0);
}

int vm_at_parse_params_max(struct vm_at_args *a, const char *s, size_t len, unsigned flags,
                           int max) {
  struct parse ps = {.a = a, .s = s, .len = len, .flags = flags};

  a->count = 0;
  if (len == 0)
    return 0;
  for (;;) {
    if (a->count >= VM_AT_MAX_PARAMS)
      goto malformed;
    struct vm_at_param *p = &a->p[a->count];
    memset(p, 0, sizeof *p);
    p->off = ps.pos;
    int rc = (max > 0 && a->count == max - 1 && ps.pos < len) ? parse_rest(&ps, p)
             : (ps.pos < len && s[ps.pos] == '"')            ? parse_quoted(&ps, p)
                                                              : parse_bare(&ps, p);
    if (rc < 0)
      goto malformed;
    a->count++;
    if (ps.pos >= len)
      return 0;
    ps.pos++; /* the ',' (a trailing one leaves an empty last parameter) */
  }
malformed:
  a->count = 0;
  return -1;
}

size_t vm_at_param_start_any(const char *s, size_t len, int i) {
  size_t start = 0;
  for (size_t k = 0; k < len && i > 0; k++) {
    if (s[k] == ',') {
      start = k + 1;
      i--;
    }
  }
  return start;
}

/* The parameter at i, or NULL if i is past the end. */
static const struct vm_at_param *arg_at(const struct vm_at_args *a, int i) {
  if (i < 0 || i >= a->count)
    return NULL;
  return &a->p[i];
}

/* On OMITTED or INVALID the outputs are left untouched, so a handler can
 * preset its default and ignore OMITTED. */
int vm_at_arg_int(const struct vm_at_args *a, int i, long *out) {
  const struct vm_at_param *p = arg_at(a, i);
  if (!p || p->type == VM_AT_P_EMPTY)
    return VM_AT_ARG_OMITTED;
  if (p->type != VM_AT_P_INT)
    return VM_AT_ARG_INVALID;
  if (out)
    *out = p->num;
  return VM_AT_ARG_OK;
}

static int arg_string(const struct vm_at_param *p, const char **s, size_t *len) {
  if (s)
    *s = p->str;
  if (len)
    *len = p->str_len;
  return VM_AT_ARG_OK;
}

int vm_at_arg_str(const struct vm_at_args *a, int i, const char **s, size_t *len) {
  const struct vm_at_param *p = arg_at(a, i);
  if (!p || p->type == VM_AT_P_EMPTY)
    return VM_AT_ARG_OMITTED;
  if (p->type != VM_AT_P_STR)
    return VM_AT_ARG_INVALID;
  return arg_string(p, s, len);
}

int vm_at_arg_text(const struct vm_at_args *a, int i, const char **s, size_t *len) {
  const struct vm_at_param *p = arg_at(a, i);
  if (!p || p->type == VM_AT_P_EMPTY)
    return VM_AT_ARG_OMITTED;
  return arg_string(p, s, len);
}
