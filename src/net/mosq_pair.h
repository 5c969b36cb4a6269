/* mosq_pair.h - mosquitto_new() without its wake-up socketpair (mosq_pair.c);
 * private to src/net/mqtt.c. */
#ifndef VMODULE_MOSQ_PAIR_H
#define VMODULE_MOSQ_PAIR_H

#include <stdbool.h>

struct mosquitto;

/* mosquitto_new(), but the client holds no socketpair: two descriptors less. */
struct mosquitto *vm_mosq_new(const char *id, bool clean_session, void *obj);

#endif
