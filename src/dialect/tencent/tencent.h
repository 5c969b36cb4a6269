/* tencent.h - the tencent dialect's shared state and, in one place, every
 * fixed reply string it prints (shared/reference/tencent-at.md). */
#ifndef VMODULE_DIALECT_TENCENT_H
#define VMODULE_DIALECT_TENCENT_H

#include "vmodule/esp.h"

/* framing of the esp-at v2 core in the QCloud firmware */
#define TC_OK "\r\nOK\r\n"
#define TC_ERROR "\r\nERROR\r\n"
#define TC_ERR_CODE_FMT "ERR CODE:0x%08x\r\n"
#define TC_BUSY "ERR CODE:0x010b0000\r\n\r\nbusy p...\r\n"
#define TC_READY "\r\nready\r\n"

struct tc_config {
  struct vm_esp_config esp;
};

struct tc_state {
  struct vm_esp esp; /* first: the ESP-family commands find it there */
};

#endif
