/* mqtt_tls.h - shared TLS client contexts for the MQTT sessions; private to
 * src/net/mqtt.c (see mqtt_tls.c). */
#ifndef VMODULE_MQTT_TLS_H
#define VMODULE_MQTT_TLS_H

#include "vmodule/mqtt.h"

/* A referenced context for o's TLS mode (not VM_MQTT_TLS_NONE): an existing
 * one when the configuration matches, else a new one. Returns 0, -EINVAL
 * (unusable files, logged under who) or -ENOMEM. */
int vm_mqtt_tls_get(const char *who, const struct vm_mqtt_opts *o, struct ssl_ctx_st **out);
/* Drops a reference from vm_mqtt_tls_get(). */
void vm_mqtt_tls_put(struct ssl_ctx_st *ctx);
/* Names the session whose libmosquitto call is about to run (NULL: none);
 * returns the one named before, to be restored afterwards. */
struct vm_mqtt *vm_mqtt_tls_bind(struct vm_mqtt *m);
/* How many distinct contexts exist (tests, benchmarks). */
unsigned vm_mqtt_tls_contexts(void);

#endif
