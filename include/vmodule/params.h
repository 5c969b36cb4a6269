/* params.h - AT command parameters, parsed with ESP-AT rules.
 *
 * "AT+X=<params>": parameters are separated by ','. A quoted string may
 * contain the escapes \\ \" \, and \<any> (-> <any>); a bare token of digits
 * with an optional leading '-' is an integer; an empty token is an omitted
 * parameter (it keeps its comma: `"a",,1` has three parameters); any other
 * bare token is "raw" text (accepted only by vm_at_arg_text, for dialects such
 * as ME3630 that take unquoted strings). Typed getters tell "omitted" from
 * "invalid" so that handlers can apply the real module's rules. */
#ifndef VMODULE_PARAMS_H
#define VMODULE_PARAMS_H

#include <stddef.h>

#define VM_AT_MAX_PARAMS 24
#define VM_AT_PARAMS_BUF 2048

enum vm_at_ptype {
  VM_AT_P_EMPTY = 0, /* omitted */
  VM_AT_P_STR,       /* "quoted", unescaped into str */
  VM_AT_P_INT,       /* -?[0-9]+ that fits a long */
  VM_AT_P_RAW,       /* any other bare token */
};

struct vm_at_param {
  enum vm_at_ptype type;
  size_t off, len; /* the token as it appears in the parameter string */
  const char *str; /* STR: unescaped text (NUL-terminated); RAW: the token (NUL-terminated) */
  size_t str_len;
  long num; /* INT */
};

struct vm_at_args {
  int count; /* 0 when the parameter string is empty */
  struct vm_at_param p[VM_AT_MAX_PARAMS];
  char buf[VM_AT_PARAMS_BUF]; /* storage for str */
};

/* Parser options. */
#define VM_AT_PARSE_COMMA_SPLITS_QUOTES 0x1 /* ESP8266 core: a bare ',' inside quotes still splits */

/* Parses s[0..len). Returns 0, or -1 when the string is malformed (an
 * unterminated quote, text after a closing quote, or more than
 * VM_AT_MAX_PARAMS parameters). */
int vm_at_parse_params(struct vm_at_args *a, const char *s, size_t len, unsigned flags);
/* As above, but with max > 0 the parameter at index max-1 is the rest of the
 * string: a single quoted string spanning to the end is a STR, anything else
 * is taken literally (INT or RAW, commas and quotes included). ME3630 uses it
 * for message fields ("split on ',' only up to the expected field count"). */
int vm_at_parse_params_max(struct vm_at_args *a, const char *s, size_t len, unsigned flags,
                           int max);

/* Where parameter i of s[0..len) starts when the string is split at every
 * ',' whatever the quotes: the earliest it can start under any reading of a
 * malformed line. With fewer than i+1 parameters, where the last one starts.
 * A trace redacts from there when the parser rejected the line. */
size_t vm_at_param_start_any(const char *s, size_t len, int i);

enum vm_at_arg_status {
  VM_AT_ARG_OK = 0,
  VM_AT_ARG_OMITTED = 1,  /* empty token, or index past the last parameter */
  VM_AT_ARG_INVALID = -1, /* present but of the wrong type */
};

/* Integer parameter (unquoted digits only). */
int vm_at_arg_int(const struct vm_at_args *a, int i, long *out);
/* String parameter (quoted only). *len may be NULL. */
int vm_at_arg_str(const struct vm_at_args *a, int i, const char **s, size_t *len);
/* Text parameter: quoted string, or a bare token taken literally (INT or RAW). */
int vm_at_arg_text(const struct vm_at_args *a, int i, const char **s, size_t *len);

#endif
