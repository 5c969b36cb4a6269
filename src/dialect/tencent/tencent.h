/* tencent.h - the tencent dialect's shared state and, in one place, every
 * fixed reply string it prints (shared/reference/tencent-at.md).
 *
 * Reply conventions of the QCloud handlers (reference §1.5-§1.7): handler
 * lines end in CR LF with no leading blank line ("OK\r\n", "+TCxxx:OK\r\n"),
 * while the esp-at core's own OK/ERROR carry a leading CR LF. No space after
 * the colon except in the few fixed informational lines below. */
#ifndef VMODULE_DIALECT_TENCENT_H
#define VMODULE_DIALECT_TENCENT_H

#include <stdbool.h>
#include <stdint.h>

#include "vmodule/esp.h"
#include "vmodule/tencent_sign.h"

/* ---- framing of the esp-at v2 core in the QCloud firmware -------------- */
#define TC_OK "\r\nOK\r\n"
#define TC_ERROR "\r\nERROR\r\n"
#define TC_ERR_CODE_FMT "ERR CODE:0x%08x\r\n"
#define TC_BUSY "ERR CODE:0x010b0000\r\n\r\nbusy p...\r\n"
#define TC_READY "\r\nready\r\n"
#define TC_FORCE_RESTART "\r\nWill force to restart!!!\r\n" /* AT+RST in a busy read */

/* ---- QCloud handler lines ---------------------------------------------- */
#define TC_HANDLER_OK "OK\r\n"         /* first line of every accepted set/exec */
#define TC_CME_FMT "+CME ERROR:%d\r\n" /* validation / state errors (no OK after) */
#define TC_PROMPT ">\r\n"              /* PUBL / PUBRAW data prompt */

/* CME codes [ATSRC qcloud_at_cmd.h] */
#define TC_E_DEALING 200 /* "previous command not finished": firmware downloading */
#define TC_E_TIMEOUT 202
#define TC_E_PARA 204
#define TC_E_NO_FW 205 /* no valid firmware: MD5 mismatch, empty image */
#define TC_E_MEM 206
#define TC_E_FLASH 207 /* flash access; also "nothing stored" */
#define TC_E_STATE 208

/* Core error codes for handlers that return the esp-at ERROR (the firmware's
 * exact ERR CODE for these is not observed, reference §1.8 / A.7). */
#define TC_ERR_TYPE VM_AT_ERR_PARA_TYPE        /* a number was expected */
#define TC_ERR_COUNT(need, given) VM_AT_ERR_PARA_NUM(need, given)
#define TC_ERR_EXEC VM_AT_ERR_EXEC_FAIL(0) /* a handler's own failure (FAIL) */
#define TC_ERR_NO_FORM VM_AT_ERR_OP_TYPE   /* a form the build does not register */

/* ---- identity and module information (tc_info.c) ----------------------- */
#define TC_DEVINFO_TEST \
  "+TCDEVINFOSET:\"TLS_MODE(1)\",\"PRODUCT_ID\",\"DEVICE_NAME\",\"DEVICE_SECRET_BCC\",\"PRODUCT_REGION\"\r\n"
#define TC_DEVINFO_QUERY_FMT "+TCDEVINFOSET:%d,\"%s\",\"%s\",%d,\"%s\"\r\n"
#define TC_DEVINFO_SET_OK "+TCDEVINFOSET:OK\r\n"
#define TC_DEVINFO_SET_FAIL_FMT "+TCDEVINFOSET:FAIL,%d\r\n"

#define TC_PRDINFO_TEST \
  "+TCPRDINFOSET:\"TLS_MODE(1)\",\"PRODUCT_ID\",\"PRODUCT_SECRET_BCC\",\"DEVICE_NAME\",\"PRODUCT_REGION\"\r\n"
#define TC_PRDINFO_QUERY_FMT "+TCPRDINFOSET:%d,\"%s\",%d,\"%s\",\"%s\"\r\n"
#define TC_PRDINFO_SET_OK "+TCPRDINFOSET:OK\r\n"
#define TC_PRDINFO_SET_FAIL_FMT "+TCPRDINFOSET:FAIL,%d\r\n"

/* gateway (tc_gateway.c, §3.11, §7.6, §7.7) */
#define TC_GWBIND_TEST "+TCGWBIND:\"MODE\",\"PRODUCT_ID\",\"DEVICE_NAME\",\"DEVICE_SECRET\"\r\n"
#define TC_GWONLINE_TEST "+TCGWONLINE:\"MODE\",\"PRODUCT_ID\",\"DEVICE_NAME\"\r\n"
#define TC_GWONLINE_LIST_FMT "+TCGWONLINE:\"%s,%s\"\r\n" /* one quoted "pid,dn" */
/* v2.2.0 AT+TCGWBIND?: one line per bound sub-device, then the core OK
 * [LIB220 at_gw_bind_query "%s:\"%s\",\"%s\"" with the command name] */
#define TC_GWBIND_LIST_FMT "+TCGWBIND:\"%s\",\"%s\"\r\n"
#define TC_GW_DESCRIBE "{\"type\":\"describe_sub_devices\"}"
#define TC_GW_RESULT_OK_FMT "%s:OK\r\n"
#define TC_GW_RESULT_FAIL_FMT "%s:FAIL,%d\r\n"
#define TC_GW_TOPIC_FMT "$gateway/operation/%s/%s"
#define TC_GW_RESULT_TOPIC_FMT "$gateway/operation/result/%s/%s"
#define TC_SYS_TOPIC_FMT "$sys/operation/%s/%s"
#define TC_SYS_RESULT_TOPIC_FMT "$sys/operation/result/%s/%s"
#define TC_SYS_TIME_GET "{\"type\": \"get\", \"resource\": [\"time\"]}"
#define TC_GW_STATUS_FMT \
  "{\"type\":\"%s\",\"payload\":{\"devices\":[{\"product_id\":\"%s\",\"device_name\":\"%s\"}]}}"
#define TC_GW_BIND_FMT                                                                      \
  "{\"type\":\"bind\",\"payload\":{\"devices\":[{\"product_id\":\"%s\",\"device_name\":\"%s\"," \
  "\"signature\":\"%s\",\"random\":%ld,\"timestamp\":%lld,\"signmethod\":\"hmacsha1\","     \
  "\"authtype\":\"psk\"}]}}"
#define TC_RC_GW_CREATE_SESSION (-221)
#define TC_RC_GW_SESSION_TIMEOUT (-223)
#define TC_RC_GW_NO_SESSION (-222)
#define TC_RC_GW_ONLINE (-224)
#define TC_RC_GW_OFFLINE (-225)
#define TC_GW_ALREADY_BOUND 809
#define TC_MAX_GW_SESSIONS 10
#define TC_GWONLINE "+TCGWONLINE" /* also the head of its result lines */
#define TC_GWBIND "+TCGWBIND"

/* sub-devices (tc_subdev.c, §3.12; v2.2.0 and later). Formats and limits
 * read from the v2.2.0 objects [LIB220 qcloud_at_cmd.c, qcloud_at_flash.c]. */
#define TC_SUBDEVINFO_TEST                                                                      \
  "+TCSUBDEVINFOSET:\"MODE\",\"PRODUCT_ID\",\"DEVICE_NAME\",\"DEVICE_SECRET_BCC\","         \
  "\"PRODUCT_REGION\"\r\n"
#define TC_SUBDEVINFO_LIST_FMT "+TCSUBDEVINFOSET:\"%s\",\"%s\",%d,\"%s\"\r\n"
#define TC_SUBDEVINFO_OK "+TCSUBDEVINFOSET:OK\r\n"
#define TC_SUBDEVINFO_FAIL_FMT "+TCSUBDEVINFOSET:FAIL,%d\r\n"
#define TC_SUBDEVPRD_TEST                                                                       \
  "+TCSUBDEVPRDSET:\"MODE\",\"PRODUCT_ID\",\"PRODUCT_SECRET_BCC\",\"DEVICE_NAME\","          \
  "\"PRODUCT_REGION\"\r\n"
/* "%u" of a word of the flash record that no handler writes: always 0 */
#define TC_SUBDEVPRD_LIST_FMT "+TCSUBDEVPRDSET:0,\"%s\",%d,\"%s\",\"%s\"\r\n"
#define TC_SUBDEVPRD_OK "+TCSUBDEVPRDSET:OK\r\n"
#define TC_SUBDEVPRD_FAIL_FMT "+TCSUBDEVPRDSET:FAIL,%d\r\n"
#define TC_SUBDEVREG_TEST "+TCSUBDEVREG:\"PRODUCT_ID\",\"DEVICE_NAME\"\r\n"
#define TC_SUBDEVREG_LIST_FMT "+TCSUBDEVREG:\"%s\",\"%s\"\r\n" /* the sub-device info list */
#define TC_SUBDEVREG_OK "+TCSUBDEVREG:OK\r\n"
#define TC_SUBDEVREG_FAIL_FMT "+TCSUBDEVREG:FAIL,%d\r\n"
/* the handler keeps the registration's result in a uint8_t: 1021 prints 253 */
#define TC_SUBDEVREG_CODE(c) ((int)(unsigned char)(c))
#define TC_SUBDEV_SECTORS 5      /* qcloud_subdev / qcloud_subprd: 20 KiB partitions */
#define TC_SUBDEV_PER_SECTOR 16  /* 244-byte records after a 4-byte header */
#define TC_SUBDEV_DEL_DN_MATCH 12 /* save_subdev_info_del compares 12 chars of the name */

/* AT+TCDEVREG (tc_dynreg.c); its test form is the core OK alone */
#define TC_DEVREG_OK "+TCDEVREG:OK\r\n"
#define TC_DEVREG_FAIL_FMT "+TCDEVREG:FAIL,%d\r\n"

/* diagnostics (tc_diag.c, §3.14): the firmware's fixed "<name>: <value>" lines */
#define TC_LOG_TEST "+TCLOG: <log_level>\r\n"
#define TC_LOG_QUERY_FMT "+TCLOG: %d\r\n"
#define TC_LOG_PASSWORD 0x052075CCL /* 86013388: other values force the ERROR level */
#define TC_LOG_ERROR 1              /* eLOG_ERROR, the level set at boot */
#define TC_LOG_DEBUG 4              /* eLOG_DISABLE 0 .. eLOG_DEBUG 4 */
#define TC_NTP_QUERY_FMT "Current system time: %lld\r\n"
#define TC_NTP_FMT "+NTP:%lld\r\n"
#define TC_NTP_POLL_MS 1000 /* setup_sntp(): sleep(1), then look at the clock */
#define TC_NTP_POLLS 9      /* retry_count 10, checked before each sleep */

#define TC_MODULE_FMT                     \
  "Module HW name: %s\r\n"                \
  "Module FW version: %s\r\n"             \
  "Module Mac addr: %s\r\n"               \
  "Module FW compiled time: %s\r\n"       \
  "Module Flash size: %dMB\r\n"

/* v2.1.x: two spaces before "version" in the first line */
#define TC_VER_V21_FMT                              \
  "Tencent Cloud IoT AT  version: %s\r\n"           \
  "Tencent Cloud IoT SDK version: %s\r\n"           \
  "Firmware compile time: %s\r\n"                   \
  "Tencent Technology Co. Ltd.\r\n"
/* v2.2 and later: one space, the QCloud core's commit after the version */
#define TC_VER_FMT                                  \
  "Tencent Cloud IoT AT version: %s(%s)\r\n"        \
  "Tencent Cloud IoT SDK version: %s\r\n"           \
  "Firmware compile time: %s\r\n"                   \
  "Tencent Technology Co. Ltd.\r\n"

#define TC_RESTORE_TEST "+TCRESTORE: CLEAR CONFIG AND RESET\r\n"

#define TC_MODINFO_TEST                                                                        \
  "+TCMODINFOSET:\"MODULE NAME\",\"FLASH_SIZE (2/4)\",\"WIFI LED GPIO\",\"FW BASE ADDR\",\"FW " \
  "MAX SIZE\",\"RESERVED\"\r\n"
#define TC_MODINFO_QUERY_FMT "+TCMODINFOSET:\"%s\",%d,%d,%ld,%ld,%ld\r\n"
#define TC_MODINFO_SET_OK "+TCMODINFOSET:OK\r\n"
#define TC_MODINFO_SET_FAIL_FMT "+TCMODINFOSET:FAIL,%d\r\n"

#define TC_MQTTSRV_TEST "+TCMQTTSRV:\"MQTT SERVER IP\"\r\n"
#define TC_MQTTSRV_QUERY_FMT "+TCMQTTSRV:%s\r\n"
/* what the v2.x firmware prints for an unset server (printf of NULL, §11.3) */
#define TC_MQTTSRV_UNSET "(null)"
#define TC_MQTTSRV_SET_OK "+TCMQTTSRV:OK\r\n"
#define TC_MQTTSRV_SET_FAIL "+TCMQTTSRV:FAIL\r\n" /* no ",code" [FW211] */

/* ---- OTA (tc_ota.c, §3.10, §7.5) --------------------------------------- */
#define TC_OTASET_TEST "+TCOTASET:1(ENABLE)/0(DISABLE),\"FW_version\"\r\n"
#define TC_OTASET_QUERY_FMT "+TCOTASET:%d,\"%s\"\r\n"
#define TC_OTASET_OK "+TCOTASET:OK\r\n"
#define TC_OTASET_FAIL_FMT "+TCOTASET:FAIL,%d\r\n"
#define TC_FWINFO_TEST "+TCFWINFO:\"FW_VERSION\",\"FW_SIZE\",\"FW_MD5\",\"FW_MAX_SIZE_OF_MODULE\"\r\n"
#define TC_READFW_TEST "+TCREADFWDATA:\"LEN_FOR_READ\"\r\n"
#define TC_OTA_UPDATE_TOPIC_FMT "$ota/update/%s/%s"
#define TC_OTA_REPORT_TOPIC_FMT "$ota/report/%s/%s"
#define TC_OTA_UPDATE_PREFIX "$ota/update/"
#define TC_OTA_REPORT_VERSION_FMT "{\"type\": \"report_version\", \"report\":{\"version\":\"%s\"}}"
/* the §7.5 reports, their irregular spaces included */
#define TC_OTA_REPORT_PROGRESS_FMT                                                                 \
  "{\"type\": \"report_progress\", \"report\": {\"progress\": {\"state\":\"downloading\", "        \
  "\"percent\":\"%d\", \"result_code\":\"0\", \"result_msg\":\"\"}, \"version\": \"%s\"}}"
#define TC_OTA_REPORT_FAIL_FMT                                                                     \
  "{\"type\": \"report_progress\", \"report\": {\"progress\": {\"state\":\"fail\", "               \
  "\"result_code\":\"%d\", \"result_msg\":\"%s\"}, \"version\": \"%s\"}}"
#define TC_OTA_REPORT_DONE_FMT                                                                     \
  "{\"type\": \"report_progress\", \"report\":{\"progress\":{\"state\":\"done\", "                \
  "\"result_code\":\"0\", \"result_msg\":\"\"}, \"version\":\"%s\"}}"
#define TC_OTA_MSG_TIMEOUT "time_out"
#define TC_OTA_MSG_MD5 "MD5_not_match"
#define TC_OTA_RC_MD5 (-4)  /* IOT_OTAR_MD5_NOT_MATCH */
#define TC_OTA_RC_FAIL (-5) /* IOT_OTAR_UPGRADE_FAIL */
/* v2.1.1: the module's own firmware as a resource, on $thing/up/service */
#define TC_OTA_RES_TOPIC_FMT "$thing/up/service/%s/%s"
#define TC_OTA_RES_REPORT_FMT                                                                      \
  "{\"method\":\"report_version\",\"report\":{\"resource_list\":[{\"resource_name\":\"%s\","       \
  "\"version\":\"%s\",\"resource_type\":\"FILE\"}]}}"
#define TC_OTA_RANGE_FMT "Range: bytes=%lld-%lld" /* end = size, as the SDK sends it */
#define TC_URC_OTA_ENTER "+TCOTASTATUS:ENTERUPDATE\r\n"
#define TC_URC_OTA_SUCCESS "+TCOTASTATUS:UPDATESUCCESS\r\n"
#define TC_URC_OTA_FAIL_FMT "+TCOTASTATUS:UPDATEFAIL,%d\r\n"
#define TC_URC_OTA_RESET "+TCOTASTATUS:UPDATERESET\r\n"
#define TC_FWINFO_FMT "+TCFWINFO:\"%s\",%lld,\"%s\",%ld\r\n"
#define TC_READFW_HEAD_FMT "+TCREADFWDATA:%ld,"
#define TC_READFW_TAIL "\r\n"
#define TC_OTA_RETRIES 3         /* MAX_OTA_RETRY_CNT */
#define TC_OTA_CHUNK 2048        /* ESP_OTA_BUF_LEN: the MQTT check runs once per chunk */
#define TC_OTA_MQTT_CHECKS 2     /* more consecutive "MQTT down" checks fail the download */
#define TC_OTA_MQTT_WAIT_MS 1000 /* the sleep after each of them */
#define TC_OTA_RETRY_WAIT_MS 1000
#define TC_OTA_RESET_WAIT_MS 2000
#define TC_OTA_PROGRESS_MS 1000
#define TC_MAX_READFW 4096
#define TC_E_EXEC 209
#define TC_E_SELF_OTA 211 /* the module's own update failed */
#define TC_E_HTTP 213

/* ---- MQTT (tc_mqtt.c) -------------------------------------------------- */
#define TC_CONN_TEST_FMT                                                                  \
  "+TCMQTTCONN:<TLSMODE_SELECTED>,<CMDTIMEOUT_VALUE(%d-%dms)>,<KEEPALIVE>(60-690s),"    \
  "<CLEAN_SESSION>(0/1),<RECONNECT>(0/1)\r\n"
#define TC_CONN_QUERY_FMT "+TCMQTTCONN:1,%u,%u,%u,%u\r\n"
#define TC_CONN_OK "+TCMQTTCONN:OK\r\n"
#define TC_CONN_FAIL_FMT "+TCMQTTCONN:FAIL,%d\r\n"

#define TC_PUB_TEST "+TCMQTTPUB: \"TOPIC_NAME(maxlen 128)\", \"QOS(0/1)\",\"PAYLOAD\"\r\n"
#define TC_PUBL_TEST_FMT "%s: \"TOPIC_NAME(maxlen 128)\", \"QOS(0/1)\",\"LEN(1-2048)\"\r\n"
#define TC_PUB_RESULT_OK_FMT "%s:OK\r\n"        /* +TCMQTTPUB / +TCMQTTPUBL / +TCMQTTPUBRAW */
#define TC_PUB_RESULT_FAIL_FMT "%s:FAIL,%d\r\n"

#define TC_SUB_TEST "+TCMQTTSUB:\"TOPIC_NAME(maxlen 128)\",\"QOS(0/1)\"\r\n"
#define TC_SUB_LIST_FMT "+TCMQTTSUB:\"%s\",%d\r\n"
#define TC_SUB_OK "+TCMQTTSUB:OK\r\n"
#define TC_SUB_FAIL_FMT "+TCMQTTSUB:FAIL,%d\r\n"
#define TC_UNSUB_TEST "+TCMQTTUNSUB:\"TOPIC_NAME\"\r\n"
#define TC_UNSUB_OK "+TCMQTTUNSUB:OK\r\n"
#define TC_UNSUB_FAIL_FMT "+TCMQTTUNSUB:FAIL,%d\r\n"
#define TC_STATE_FMT "+TCMQTTSTATE:%d\r\n"

/* URCs (§4). RCVPUB is built by hand: the payload is raw bytes. */
#define TC_URC_RCVPUB_HEAD_FMT "+TCMQTTRCVPUB:\"%s\",%zu,\""
#define TC_URC_RCVPUB_TAIL "\"\r\n"
#define TC_URC_DISCON_FMT "+TCMQTTDISCON,%d\r\n" /* comma, not colon */
#define TC_URC_RECONNECTING "+TCMQTTRECONNECTING\r\n"
#define TC_URC_RECONNECTED "+TCMQTTRECONNECTED\r\n"

/* SDK return codes [EXPL qcloud_iot_export_error.h] (§6.1) */
#define TC_RC_MANUALLY_DISCONNECTED 2
#define TC_RC_FAILURE (-1001)
#define TC_RC_INVAL (-1002)
#define TC_RC_NO_CONN (-103)
#define TC_RC_RECONNECT_TIMEOUT (-106)
#define TC_RC_MAX_SUBS (-107)
#define TC_RC_SUB_REFUSED (-108)
#define TC_RC_BUF_TOO_SHORT (-119)
#define TC_RC_UNSUB_FAIL (-121)
#define TC_RC_BAD_PROTOCOL (-113)
#define TC_RC_ID_REJECTED (-114)
#define TC_RC_SERVER_UNAVAILABLE (-115)
#define TC_RC_BAD_USERPASS (-116)
#define TC_RC_NOT_AUTHORIZED (-117)
#define TC_RC_CONNACK_UNKNOWN (-112)
/* What a failed connect prints (the SDK's HAL, read from the v2.1.1 image and
 * the v2.2.0 objects): HAL_TLS_Connect() logs the -601/-602/-603 of a failed
 * lookup or socket connect but returns no handle, which network_tls_connect()
 * turns into -703, as it does a failed handshake; network_tcp_connect()
 * returns a bare -1 for any failure of HAL_TCP_Connect(). */
#define TC_RC_TCP_CONNECT_FAILED (-1)
#define TC_RC_TCP_PEER_SHUTDOWN (-608)
#define TC_RC_SSL_CONNECT (-703)
/* the SDK's HTTP client (dynamic registration, tc_dynreg.c http_code()) */
#define TC_RC_HTTP_UNKNOWN (-4)
#define TC_RC_HTTP_DNS (-6) /* the SDK's name; its client never returns it for a lookup */
#define TC_RC_HTTP_CONN (-8) /* any failure to connect: name, TCP, TLS handshake, certificate */
#define TC_RC_HTTP_AUTH (-9) /* HTTP 403 */
#define TC_RC_HTTP_NOT_FOUND (-10)
#define TC_RC_SSL_READ (-708) /* also the connection breaking after the HTTP request */

/* ---- Wi-Fi provisioning (tc_prov.c, §3.13, §6.3) ------------------------ */
#define TC_STARTSMART_TEST "+TCSTARTSMART: CMD FOR START SMARTCONFIG\r\n" /* the one space */
#define TC_STOPSMART_TEST "+TCSTOPSMART:CMD TO STOP SMARTCONFIG\r\n"
#define TC_SAP_TEST "+TCSAP=<ssid>[,<pwd>,<ch>]\r\n"
#define TC_STOPSAP_TEST "+TCSTOPSAP:CMD TO STOP SOFTAP\r\n"
#define TC_STARTSMART "+TCSTARTSMART" /* the head of its result lines and URCs */
#define TC_SAP "+TCSAP"
#define TC_PROV_OK_FMT "%s:OK\r\n"
#define TC_PROV_FAIL_FMT "%s:FAIL,%d\r\n"
#define TC_URC_PROV_SUCCESS_FMT "%s:WIFI_CONNECT_SUCCESS\r\n"
#define TC_URC_PROV_FAILED_FMT "%s:WIFI_CONNECT_FAILED,%u,%d\r\n"
#define TC_PROV_DOWN_TOPIC_FMT "$thing/down/service/%s/%s"
#define TC_PROV_UP_TOPIC_FMT "$thing/up/service/%s/%s"
/* the space after "params": is the firmware's */
#define TC_PROV_BIND_TOKEN_FMT \
  "{\"method\":\"app_bind_token\",\"clientToken\":\"%s-%u\",\"params\": {\"token\":\"%s\"}}"
#define TC_PROV_LOG_AP "ESP-LOG-QUERY"     /* the diagnostic softAP (password 86013388) */
#define TC_PROV_LOG_QUERY "{\"cmdType\":3}"  /* its server compares the first 12 bytes */
#define TC_PROV_LOG_QUERY_CMP 12
#define TC_PROV_LOG_LINE_FMT "%u|%s(%d): " /* push_dev_log(): ms since boot, function, line */
#define TC_PROV_LOG_ITEM 128               /* LOG_ITEM_SIZE */
#define TC_PROV_LOG_LINES 10               /* LOG_QUEUE_SIZE: the newest ten */
#define TC_PROV_ERR_LOGS 16                /* ERR_LOG_QUEUE_SIZE */
#define TC_PROV_SAP_TICK_MS 300            /* SOFT_AP_BLINK_TIME_MS: the task's wait step */
#define TC_PROV_SMART_TICK_MS 600          /* SMART_CONFIG_BLINK_TIME_MS */
#define TC_PROV_LOG_SERVER_MS 360000       /* the log server stays 6 minutes */
#define TC_PROV_LOG_RESEND_MS 500          /* the log is sent twice, 500 ms apart */
#define TC_PROV_START_FAIL_LOG_MS 3000     /* start failed: 3 s, then the log softAP */
#define TC_PROV_DYNREG_PAUSE_MS 500        /* after storing a registered device */
#define TC_PROV_REPLIES 3                  /* the device reply, three times */
#define TC_PROV_TOKEN_ATTEMPTS 3           /* _send_token_wait_reply(), retry_cnt 2 */
#define TC_PROV_PUBLISH_TRIES 4            /* _publish_token_msg(), wait_cnt 3 */
#define TC_PROV_PUBACK_WINDOWS 5           /* 5 yields of a step for the PUBACK */
#define TC_PROV_SUB_WINDOWS 2              /* 2 yields of a step for the SUBACK */
#define TC_PROV_KEEPALIVE 240              /* the SDK's default MQTT init params */
#define TC_PROV_CONNECT_MS 5000            /* its command timeout */
/* the eErrLogType / eErrLogSubType values of §6.3 the emulation prints */
#define TC_PROV_E_MQTT 1
#define TC_PROV_E_APP_CMD 2
#define TC_PROV_E_STOP 3
#define TC_PROV_E_TASK 4
#define TC_PROV_E_SOCKET_BIND 16
#define TC_PROV_E_TOKEN_SEND 23
#define TC_PROV_E_TOKEN_REPLY 24
#define TC_PROV_E_TOKEN_RECV 25
#define TC_PROV_E_REGION 26
#define TC_PROV_E_DEVICE_INFO 27
#define TC_PROV_S_APP_STOP 101
#define TC_PROV_S_AT_STOP 102
#define TC_PROV_S_TIMEOUT 103
#define TC_PROV_S_JSON 201
#define TC_PROV_S_AP_INFO 204
#define TC_PROV_S_JSON_PRINT 205
#define TC_PROV_S_COMM_TASK 206
#define TC_RC_MQTT_UNKNOWN (-104) /* the PUBACK never came */
/* the station's disconnect reasons (esp_wifi_types.h) the log shows */
#define TC_PROV_REASON_HANDSHAKE 15 /* WIFI_REASON_4WAY_HANDSHAKE_TIMEOUT: wrong password */
#define TC_PROV_REASON_NO_AP 201    /* WIFI_REASON_NO_AP_FOUND */
#define TC_PROV_SECRET_MASK "********" /* what the log shows for a Wi-Fi password */
/* The provisioning log lines (push_dev_log(), read out by the app's log query
 * through ESP-LOG-QUERY): "<function>", <line>, "<format>" of the firmware's
 * qcloud_wifi_config sources, spelling included; the devlog() arguments. */
#define TC_PLOG_PUB_TIMEOUT "_send_token_wait_reply", 335, "pub token timeout"
#define TC_PLOG_PUB_FAILED "_send_token_wait_reply", 322, "pub token failed: %d"
#define TC_PLOG_TOKEN_WAIT_TIMEOUT "_send_token_wait_reply", 295, "Wait for token data timeout"
#define TC_PLOG_REGION_FAULT "_send_token_wait_reply", 302, "Region fault: %s != %s"
#define TC_PLOG_SUB_FAILED "mqtt_send_token", 453, "Subscribe topic failed: %d"
#define TC_PLOG_CONNECT_FAILED "mqtt_send_token", 441, "Device %s/%s connect failed: %d"
#define TC_PLOG_CONNECT_OK "mqtt_send_token", 446, "Device %s/%s connect success"
#define TC_PLOG_MQTT_DISCONNECT "_mqtt_event_handler", 109, "MQTT disconnect"
#define TC_PLOG_TOKEN_REPLY_ERROR "_on_message_callback", 196, "token reply error: %d"
#define TC_PLOG_DYNREG_FAILED "_get_reg_dev_info", 356, "dynamic register device failed: %d"
#define TC_PLOG_DEVINFO_FAILED "mqtt_send_token", 425, "Get device info failed: %d"
#define TC_PLOG_STA_DISCONNECTED "_wifi_event_handler", 79, "STA_DISCONNECTED from AP %s reason: %u"
#define TC_PLOG_STA_CONNECTED "_wifi_event_handler", 65, "STA_CONNECTED to AP %s at ch %u"
#define TC_PLOG_STA_GOT_IP "_wifi_event_handler", 71, "STA Got IP[%s]"
#define TC_PLOG_APP_DONE "udp_server_task", 737, "Finish app cmd handle"
#define TC_PLOG_APP_AP "app_handle_recv_data", 603, "SSID:%s|PSW:%s|TOKEN:%s"
#define TC_PLOG_REPLY_PRINT_FAILED "app_reply_dev_info", 507, "cJSON_PrintPreallocated failed!"
#define TC_PLOG_APP_DATAGRAM "udp_server_task", 727, "%s"
#define TC_PLOG_APP_BAD_TOKEN "app_handle_recv_data", 580, "invlaid token: %s"
#define TC_PLOG_APP_BAD_AP "app_handle_recv_data", 621, "invlaid ssid/password/token!"
#define TC_PLOG_APP_BAD_JSON "app_handle_recv_data", 549, "Invalid cmd JSON: %s"
#define TC_PLOG_APP_BAD_CMD "app_handle_recv_data", 635, "invalid cmd: %s"
#define TC_PLOG_SC_START "start_smartconfig", 1071, "Enter smartconfig"
#define TC_PLOG_SAP_START "start_softAP", 879, "start softAP: %s"
#define TC_PLOG_SC_OVER "smartconfig_mqtt_task", 1000, "smartconfig over"
#define TC_PLOG_SC_GOT_AP "_smartconfig_event_cb", 306, "SC SSID:%s PSW:%s"
#define TC_PLOG_SC_MQTT_FAILED "smartconfig_mqtt_task", 986, "SmartConfig: WIFI_MQTT_CONNECT_FAILED: %d"
#define TC_PLOG_SAP_MQTT_FAILED "softAP_mqtt_task", 802, "SoftAP: WIFI_MQTT_CONNECT_FAILED: %d"
#define TC_PLOG_SC_MQTT_OK "smartconfig_mqtt_task", 990, "SmartConfig: WIFI_MQTT_CONNECT_SUCCESS"
#define TC_PLOG_SAP_MQTT_OK "softAP_mqtt_task", 806, "SoftAP: WIFI_MQTT_CONNECT_SUCCESS"
#define TC_PLOG_SC_TIMEOUT "smartconfig_mqtt_task", 1027, "SmartConfig: TIMEOUT"
#define TC_PLOG_SAP_TIMEOUT "softAP_mqtt_task", 835, "SoftAP: TIMEOUT"
#define TC_PLOG_SC_COMM_ERROR "smartconfig_mqtt_task", 1018, "comm server task error"
#define TC_PLOG_SAP_COMM_ERROR "softAP_mqtt_task", 826, "comm server task error"
#define TC_PLOG_SC_NO_DEVICE "start_smartconfig", 1080, "load device info failed: %d"
#define TC_PLOG_SAP_NO_DEVICE "start_softAP", 888, "load device info failed: %d"
#define TC_PLOG_SC_STOPPED "stop_smartconfig", 1157, "softAP stopped by user!"
#define TC_PLOG_SAP_STOPPED "stop_softAP", 957, "softAP stopped by user!"
#define TC_STORE_PROV_ERRLOG "tc_prov_errlog" /* save_error_log(): the unhandled errors */

/* ---- limits (Appendix B) ----------------------------------------------- */
#define TC_MAX_PID 10
#define TC_MAX_DN 48
#define TC_MAX_DEV_SECRET 44
#define TC_MAX_PRD_SECRET 32
#define TC_MAX_REGION 24
#define TC_MAX_MODULE_NAME 30
#define TC_MAX_TOPIC 128
#define TC_MAX_PUBL 2048
#define TC_MAX_SUBS 10 /* MAX_MESSAGE_HANDLERS */
#define TC_MAX_HOST 63 /* HOST_STR_LENGTH 64 with its NUL */
#define TC_MAX_SSID 32
#define TC_MIN_SAP_PWD 8
#define TC_MAX_SAP_PWD 32
#define TC_MAX_SAP_CH 13
#define TC_CMD_TIMEOUT_MIN 1000 /* the maximum is the variant's (10000 or 20000) */
#define TC_KEEPALIVE_MIN 60
#define TC_KEEPALIVE_MAX 690
#define TC_OTA_FW_START 1118208 /* 0x111000: lowest OTA base address */
#define TC_OTA_FW_MAX_2MB 716800
#define TC_FLASH_SECTOR 4096

#define TC_DEFAULT_REGION "ap-guangzhou"
#define TC_DYNREG_MAX_REPLY 4096 /* the SDK's response buffer is smaller still */
#define TC_DYNREG_PSK_TYPE 2     /* encryptionType of a key (not certificate) device */
#define TC_DYNREG_MIN_SECRET 16 /* the SDK needs an AES-128 key from the product secret */
/* dynamic registration v1 endpoint (§7.2); na-ashburn uses the us-east host */
#define TC_DYNREG_URL "https://gateway.tencentdevices.com/register/dev"
#define TC_DYNREG_URL_US "https://us-east.gateway.tencentdevices.com/register/dev"
#define TC_DYNREG_V1_ACCEPT "Accept: text/xml,application/json;*/*"
#define TC_DYNREG_V1_CONTENT_TYPE "Content-Type: application/x-www-form-urlencoded" /* sic */
/* v2 (§7.3, seed 003): the only host the references give, for every region */
#define TC_DYNREG_V2_URL "https://ap-guangzhou.gateway.tencentdevices.com/device/register"
#define TC_DYNREG_V2_ACCEPT "Accept: application/json;*/*"
#define TC_DYNREG_V2_CONTENT_TYPE "Content-Type: application/json; charset=utf-8"
#define TC_DYNREG_V2_ALGORITHM "hmacsha256"
#define TC_DYNREG_V2_BODY_FMT "{\"ProductId\":\"%s\",\"DeviceName\":\"%s\"}"
#define TC_DEFAULT_MODULE_NAME "ESP-DEFAULT-2MB"      /* v2.1.1: a literal */
#define TC_DEFAULT_MODULE_NAME_FMT "ESP-DEFAULT-%dMB" /* v2.2+: of the flash size */

/* ---- persistence: keys of the module's store document ------------------ */
#define TC_STORE_DEVINFO "tc_devinfo"
#define TC_STORE_PRDINFO "tc_prdinfo"
#define TC_STORE_MODINFO "tc_modinfo"
#define TC_STORE_FWINFO "tc_fwinfo" /* the OTA firmware record; TCRESTORE erases it */
#define TC_STORE_SELFOTA "tc_selfota" /* the AT firmware version a self-update installed */
#define TC_STORE_SUBDEV "tc_subdev" /* sub-device info: sectors of {pid, dn, secret, region} */
#define TC_STORE_SUBPRD "tc_subprd" /* sub-device product info: sectors of the same shape */

/* ---- configuration (the module's "tencent" object) ---------------------- */
enum tc_transport {
  TC_TRANSPORT_TLS_PSK, /* what the firmware does: TLS-PSK on 8883 */
  TC_TRANSPORT_TCP,     /* plain TCP on 1883 with the signed username/password */
  TC_TRANSPORT_TLS,     /* TLS verified against ca_file, signed username/password */
};

enum tc_dynreg_api {
  TC_DYNREG_V1, /* POST /register/dev, what the firmware speaks (§7.2) */
  TC_DYNREG_V2, /* POST /device/register with the X-TC-* headers (§7.3) */
};

/* ---- firmware variants (tc_variant.c): one per chip x firmware ---------- */
struct tc_variant {
  enum vm_esp_chip chip;
  const char *chip_name;   /* its tencent.chip value: "esp8266", "esp32", "esp32c3" */
  const char *firmware;    /* its tencent.firmware value: "2.1.1", ... */
  bool chip_default;       /* the chip's firmware when tencent.firmware is absent */
  int core;                /* esp-at core version x100 (vm_esp.core) */
  const char *const *gmr;  /* AT+GMR lines, NULL-terminated */
  const char *fw_version;  /* AT+TCVER / AT+TCMODULE */
  const char *fw_hash;     /* QCloud core commit AT+TCVER prints; NULL: the v2.1 format */
  const char *sdk_version; /* AT+TCVER's SDK line */
  const char *compile_time;
  const char *module_name; /* default; NULL: TC_DEFAULT_MODULE_NAME_FMT of the flash size */
  int flash_mb;
  long ota_base, ota_max;  /* AT+TCMODINFOSET defaults of the MCU OTA area */
  int cmd_timeout_max;     /* AT+TCMQTTCONN command timeout, ms */
  const char *self_ota_file; /* module self-OTA: the file name it takes (OTA issue) */
  bool self_ota_prefix;      /* ... matched as a prefix of the name */
  bool self_ota_report;      /* ... and reports fw_version as a resource */
  bool ota_md5_msg;          /* SDK 3.2.1: "MD5_not_match" in the -4 report, else "time_out" */
  bool comma_splits_quotes;  /* the ESP8266 core's parser (VM_AT_PARSE_COMMA_SPLITS_QUOTES) */
  bool subdev;               /* v2.2.0+: AT+TCSUBDEV*, TCGWBIND's stored secrets, TCGWBIND? */
  bool prov_reply_printf;    /* the provisioning device reply from a printf template, not cJSON */
};

/* The variant of chip with firmware (NULL: the chip's default), or NULL. */
const struct tc_variant *tc_variant_find(const char *chip, const char *firmware);
bool tc_variant_chip_known(const char *chip);
/* The build of chip whose AT version is fw_version, or NULL. */
const struct tc_variant *tc_variant_of_version(enum vm_esp_chip chip, const char *fw_version);
/* The chip's firmware values for an error message: "\"2.1.1\" or \"2.2.0\"". */
void tc_variant_firmwares(const char *chip, char *buf, size_t cap);

struct tc_config {
  struct vm_esp_config esp;
  const struct tc_variant *variant; /* tencent.chip x tencent.firmware */
  char chip[8], firmware[8];        /* as configured; "" = default */
  /* explicit values, or the variant's once parsed */
  char module_name[TC_MAX_MODULE_NAME + 1]; /* module name until TCMODINFOSET */
  int flash_mb;                             /* flash size until TCMODINFOSET */
  char mac[18];                             /* "84:f3:eb:56:0e:e9" */
  char fw_version[64];                      /* TCVER / TCMODULE */
  char sdk_version[32];
  char compile_time[32]; /* __DATE__ " " __TIME__ of the emulated build */
  enum tc_transport transport;
  char *mqtt_host; /* NULL: the Tencent host for the product */
  int mqtt_port;   /* 0: 8883 for TLS, 1883 for tcp */
  char sdkappid[16];
  char *ca_file;   /* tls transport */
  enum vm_tencent_hmac sign;
  char connid[VM_TENCENT_CONNID_LEN + 1]; /* "" = random per connect */
  unsigned publ_timeout_ms;  /* PUBL/PUBRAW data phase (firmware: 20 s) */
  unsigned reconnect_max_ms; /* give up once the back-off passes this (SDK: 60 s) */
  char *dynreg_url;          /* NULL: TC_DYNREG_URL(_US) by region */
  char *dynreg_ca_file;      /* NULL: the system store */
  unsigned dynreg_timeout_ms; /* the firmware's 10 s registration budget */
  enum tc_dynreg_api dynreg_api;
  unsigned gateway_timeout_ms; /* the SDK polls for a reply 100 x 200 ms */
  char *ota_ca_file;           /* OTA download CA bundle; NULL: the system store */
  unsigned ota_read_timeout_ms; /* the SDK's fetch timeout: 20 s without a byte */
  int softap_udp_port;          /* provisioning UDP server (8266); 0 = the kernel's pick */
  int log_udp_port;             /* ESP-LOG-QUERY log server (9876); 0 = the kernel's pick */
  unsigned provision_timeout_ms; /* the configuration task's 300 s */
  unsigned provision_retry_timeout_ms; /* what is left after a Wi-Fi disconnect: 50 s */
  unsigned provision_step_ms;   /* the 1 s reply gaps, sleeps and MQTT yields */
  unsigned provision_settle_ms; /* the 5 s after the token before SUCCESS */
  unsigned provision_token_wait_ms; /* 20 s for the app's token (per attempt) */
};

/* ---- runtime state ------------------------------------------------------ */
struct tc_devinfo {
  int tls;
  char pid[TC_MAX_PID + 1], dn[TC_MAX_DN + 1], secret[TC_MAX_DEV_SECRET + 1];
  char region[TC_MAX_REGION + 1];
};

struct tc_prdinfo {
  int tls;
  char pid[TC_MAX_PID + 1], secret[TC_MAX_PRD_SECRET + 1], dn[TC_MAX_DN + 1];
  char region[TC_MAX_REGION + 1];
};

struct tc_mqtt;   /* tc_mqtt.c */
struct tc_dynreg; /* tc_dynreg.c */
struct tc_diag;   /* tc_diag.c */
struct tc_gateway; /* tc_gateway.c */
struct tc_ota;     /* tc_ota.c */
struct tc_prov;    /* tc_prov.c */

struct tc_state {
  struct vm_esp esp; /* first: the ESP-family commands find it there */
  struct vm_module *m;
  const struct tc_config *cfg;
  bool fw_downloading;      /* set by the OTA task from ENTERUPDATE to the attempt's end:
                               gates most setters with 200 */
  char mqtt_srv[TC_MAX_HOST + 1]; /* AT+TCMQTTSRV, RAM only; "" = unset */
  unsigned gen;             /* bumped at every power-off: stale callbacks check it */
  struct tc_mqtt *mqtt;
  struct tc_dynreg *dynreg;
  struct tc_diag *diag;
  struct tc_gateway *gw;
  struct tc_ota *ota;
  struct tc_prov *prov;
};

/* tencent.c: helpers shared by the command files */
struct tc_state *tc_state_of(struct vm_at *at);
/* "+CME ERROR:<code>\r\n"; returns VM_AT_DONE (no OK follows). */
enum vm_at_result tc_cme(struct vm_at *at, int code);
/* The XOR of the bytes of s, printed by queries in place of a secret. */
int tc_bcc(const char *s);

/* tc_info.c */
extern const struct vm_at_cmd tc_info_cmds[];
extern const size_t tc_info_ncmds;
/* Loads the stored device triple / product info. Returns 0, or -1 when none
 * is stored. */
int tc_devinfo_load(struct tc_state *s, struct tc_devinfo *out);
int tc_prdinfo_load(struct tc_state *s, struct tc_prdinfo *out);
/* Stores the device triple and finishes the pending command with ok, or
 * fail_fmt with 207 when the flash write fails. Returns VM_AT_PENDING (the
 * write is under way) or VM_AT_DONE (already answered). */
enum vm_at_result tc_devinfo_store(struct vm_at *at, const struct tc_devinfo *d, const char *ok,
                                   const char *fail_fmt);
/* The state gate of the setters: the MQTT task running gives 208, a firmware
 * download 200; 0 when the command may go on. */
int tc_setter_gate(struct vm_at *at);
/* The helpers of tc_info.c for the other command files: string member key
 * of o (1..cap-1 chars) into dst, 0 or -1; string parameter i of 1..max
 * bytes, 0 or -1 (the firmware's 204); stores val under key (NULL: nothing
 * to write) and finishes the command with ok, or fail_fmt with 207 when the
 * flash write fails (VM_AT_PENDING while the write runs, else VM_AT_DONE). */
int tc_load_str(const cJSON *o, const char *key, char *dst, size_t cap);
int tc_str_param(const struct vm_at_args *a, int i, size_t max, const char **out);
enum vm_at_result tc_persist(struct vm_at *at, const char *key, cJSON *val, const char *ok,
                             const char *fail_fmt);

/* tc_diag.c */
extern const struct vm_at_cmd tc_diag_cmds[];
extern const size_t tc_diag_ncmds;
int tc_diag_init(struct tc_state *s);
void tc_diag_power_on(struct tc_state *s);
void tc_diag_power_off(struct tc_state *s);
void tc_diag_destroy(struct tc_state *s);

/* tc_dynreg.c: the module's one dynamic-registration client, and AT+TCDEVREG */
extern const struct vm_at_cmd tc_dynreg_cmds[];
extern const size_t tc_dynreg_ncmds;
/* The end of a registration: code 0 with the device secret in psk, or the
 * failure code as §6.1 gives it (psk NULL); p is the product info it was
 * started with (valid during the call only). */
typedef void (*tc_dynreg_cb)(struct tc_state *s, const struct tc_prdinfo *p, int code,
                             const char *psk, void *data);
/* Registers device p->dn of product p->pid (secret, region) over the API of
 * tencent.dynreg_api. Returns 0 when the request is on its way (done runs
 * later, never inside this call, unless a power-off abandons it), or the
 * code to fail with now: -1001 for a product secret under 16 characters (or
 * a registration already in flight), -8 without Wi-Fi. */
int tc_dynreg_request(struct tc_state *s, const struct tc_prdinfo *p, tc_dynreg_cb done,
                      void *data);
int tc_dynreg_init(struct tc_state *s);
void tc_dynreg_power_off(struct tc_state *s); /* abandons a registration in flight */
void tc_dynreg_destroy(struct tc_state *s);

/* tc_mqtt.c */
extern const struct vm_at_cmd tc_mqtt_cmds[];
extern const size_t tc_mqtt_ncmds;
int tc_mqtt_init(struct tc_state *s);
/* mqtt_task_running of §2: set from TCMQTTCONN until the task exits. */
bool tc_mqtt_task_running(const struct tc_state *s);
void tc_mqtt_on_wifi(struct tc_state *s, bool up);
/* The "mqtt" member of `status` (dialect.h). */
void tc_mqtt_status(struct tc_state *s, cJSON *obj);
void tc_mqtt_power_off(struct tc_state *s);
void tc_mqtt_destroy(struct tc_state *s);
/* For SDK services (the gateway, OTA): connected now; the task's device
 * triple; subscribe to an exact topic, renewed after reconnects (the mid, 0
 * when already subscribed, or -errno); publish a text message (>= 0, or
 * -errno). Messages on a service's topic go to that service, never to
 * +TCMQTTRCVPUB. */
#define TC_MAX_SVC_SUBS 4
bool tc_mqtt_connected(const struct tc_state *s);
const struct tc_devinfo *tc_mqtt_device(const struct tc_state *s); /* of the running task */
int tc_mqtt_svc_subscribe(struct tc_state *s, const char *topic, int qos);
int tc_mqtt_svc_publish(struct tc_state *s, const char *topic, const char *payload, int qos);
/* For an SDK client of its own (Wi-Fi provisioning): the connect options
 * of device d as the task builds them (broker from AT+TCMQTTSRV, the
 * config or the product; the transport's credentials) into o, whose
 * strings live in c (wipe it after the connect call). 0, or -1 for a
 * secret that is not base64. The SDK code of a failed connect's rc. */
struct tc_mqtt_creds {
  char client_id[TC_MAX_PID + TC_MAX_DN + 1];
  char username[160];
  char password[VM_TENCENT_PASSWORD_MAX];
  char psk_hex[2 * 64 + 1];
  char host[256];
};
struct tc_mqtt_link {
  int keepalive, timeout_ms;
  bool clean;
};
struct vm_mqtt_opts;
int tc_mqtt_opts(struct tc_state *s, const struct tc_devinfo *d, const char *connid,
                 const struct tc_mqtt_link *l, struct vm_mqtt_opts *o, struct tc_mqtt_creds *c);
int tc_mqtt_connect_code(const struct tc_state *s, int rc);

/* tc_ota.c */
extern const struct vm_at_cmd tc_ota_cmds[];
extern const size_t tc_ota_ncmds;
int tc_ota_init(struct tc_state *s);
void tc_ota_power_off(struct tc_state *s);
void tc_ota_destroy(struct tc_state *s);
void tc_ota_on_message(struct tc_state *s, const char *topic, const void *payload, int len);
void tc_ota_task_end(struct tc_state *s); /* the MQTT client is gone */
/* The AT firmware version (AT+TCVER, AT+TCMODULE): the configured one, or
 * what a module self-update installed. */
const char *tc_fw_version(struct tc_state *s);
/* The build whose identity strings (AT+TCVER, AT+GMR) the module shows: the
 * configured one, or the one a self-update installed when its version is a
 * known build's; NULL after a self-update to an unknown version (AT+TCVER
 * then prints that version with the configured build's other strings). */
const struct tc_variant *tc_fw_variant(struct tc_state *s);
/* tc_info.c: the MCU OTA area's size (AT+TCMODINFOSET, else the variant's) */
long tc_ota_area_max(struct tc_state *s);

/* tc_prov.c: Wi-Fi provisioning (AT+TCSTARTSMART, TCSTOPSMART, TCSAP,
 * TCSTOPSAP), its UDP servers and the `smartconfig` control verb */
extern const struct vm_at_cmd tc_prov_cmds[];
extern const size_t tc_prov_ncmds;
int tc_prov_init(struct tc_state *s);
void tc_prov_power_on(struct tc_state *s);
void tc_prov_power_off(struct tc_state *s);
void tc_prov_destroy(struct tc_state *s);
void tc_prov_status(struct tc_state *s, cJSON *obj); /* "provision": {...} */
/* `smartconfig SSID PASSWORD` / `smartconfig stop` (fault.h): the phone's
 * ESP-TOUCH. Returns 0, -1 with err set, or VM_FAULT_UNSUPPORTED. */
int tc_prov_fault(struct tc_state *s, int argc, char **argv, char *err, size_t errlen);
int tc_prov_fault_check(int argc, char **argv, char *err, size_t errlen);

/* tc_subdev.c (v2.2.0 and later) */
extern const struct vm_at_cmd tc_subdev_cmds[];
extern const size_t tc_subdev_ncmds;
/* Whether the running firmware has the sub-device commands (the configured
 * build, or the one a self-update installed). */
bool tc_subdev_supported(struct tc_state *s);
/* The secret AT+TCSUBDEVINFOSET / AT+TCSUBDEVREG stored for pid/dn into out
 * (cap >= TC_MAX_DEV_SECRET + 1): 0, or -1 when none is stored. */
int tc_subdev_secret(struct tc_state *s, const char *pid, const char *dn, char *out, size_t cap);
/* AT+TCRESTORE: drops both lists from the store (the caller commits). */
void tc_subdev_erase(struct tc_state *s);

/* tc_gateway.c */
extern const struct vm_at_cmd tc_gateway_cmds[];
extern const size_t tc_gateway_ncmds;
int tc_gateway_init(struct tc_state *s);
void tc_gateway_on_message(struct tc_state *s, const char *topic, const void *payload, int len);
void tc_gateway_on_suback(struct tc_state *s, int mid, bool granted);
void tc_gateway_task_end(struct tc_state *s); /* the MQTT client is gone with its sessions */
void tc_gateway_power_off(struct tc_state *s);
void tc_gateway_destroy(struct tc_state *s);

#endif
