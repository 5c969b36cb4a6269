/* tc_ota.c - OTA in the tencent dialect (reference §3.10, §5, §7.5):
 * AT+TCOTASET, AT+TCFWINFO, AT+TCREADFWDATA and the firmware's OTA task.
 *
 * The task, as the AT firmware runs it: AT+TCOTASET=1 subscribes
 * $ota/update/<pid>/<dn> (QoS 1) and reports the version; an update_firmware
 * message prints +TCOTASTATUS:ENTERUPDATE, sets fw_downloading, and fetches
 * the url with "Range: bytes=<offset>-<size>" (resuming from the stored
 * downloaded_size when the record names the same file and version, the MD5
 * recomputed over the bytes already stored), reporting progress on
 * $ota/report. At the end the MD5 decides: a mismatch reports -4, erases the
 * record and ends with UPDATEFAIL,205 (no retry); a match stores the record
 * (MCU_VALID), reports done and prints UPDATESUCCESS (the module's own
 * firmware also UPDATERESET and a reboot 2 s later into the new version).
 * Any other failure (HTTP 213, read timeout 202, flash 207, MQTT lost 208)
 * reports -5, stores downloaded_size for a resume, and while MQTT is up and
 * fewer than 4 attempts failed, re-reports the version 1 s later and waits
 * for the cloud to push again; otherwise UPDATEFAIL,<code> ends the task.
 *
 * Where the firmware's behaviour could not be followed byte for byte, the
 * README says so: the download is not paced (the firmware sleeps 500 ms per
 * 2 KiB chunk); a server answering 200 to a ranged request restarts the
 * image from 0 (the SDK would splice it in and fail the MD5); a new download
 * erases the record with the area, so a cut leaves no stale MCU_VALID record.
 *
 * The image lives in <state_dir>/<module>/fw_mcu.bin (fw_esp.bin for the
 * module's own), written on the threadpool (tc_fwfile.c); the record is the
 * TC_STORE_FWINFO entry of the store. Bytes are fsynced before any record
 * counts them, so a kill -9 leaves the old record or the new one. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "vmodule/http.h"
#include "vmodule/json.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "vmodule/store.h"
#include "tc_fwfile.h"
#include "tc_replies.h"
#include "tencent.h"


/* the record's states (sOTAFirmwareInfo.fw_state) */
static const char *const fw_states[] = {"mcu_downloading", "mcu_valid", "esp_downloading",
                                        "esp_valid"};
enum fw_state { FW_MCU_DOWNLOADING, FW_MCU_VALID, FW_ESP_DOWNLOADING, FW_ESP_VALID, FW_NONE };

struct fw_record {
  enum fw_state state;
  char name[TC_OTA_MAX_NAME + 1], version[TC_OTA_MAX_VERSION + 1], md5[33];
  long long size, downloaded;
  long max;
};

enum dl_phase {
  DL_IDLE,    /* listening (or not running at all) */
  DL_PREP,    /* erase or resume MD5 on the threadpool */
  DL_HTTP,    /* the GET runs */
  DL_FINISH,  /* flush, MD5, record */
  DL_FAILING, /* flush, fail report, record */
  DL_RETRY,   /* 1 s before the version is reported again */
  DL_RESET,   /* 2 s before the reboot into the module's new firmware */
};

struct tc_ota {
  struct tc_state *s;
  bool enabled;                          /* the query's flag (RAM only, §5) */
  char version[TC_OTA_MAX_VERSION + 1];  /* last version set */
  bool running;                          /* the task listens on $ota/update */
  enum dl_phase phase;
  struct tc_ota_update up;               /* the upgrade in progress */
  bool self;                             /* ... is the module's own firmware */
  long long got;                         /* bytes of the image held (offset included) */
  int err, fails, mqtt_down;
  bool first_data, hold;                 /* hold: paused for the MQTT check's sleep */
  long long checked;                     /* got at the last MQTT check */
  uint64_t report_ms;
  int report_pct;
  EVP_MD_CTX *md;
  struct tc_fwfile *file;                /* the area being written or read; NULL until used */
  bool file_self, file_open;
  struct vm_http http;
  struct vm_http_req req;
  bool http_ready;
  uv_timer_t timer;
  bool stop_pending;                     /* AT+TCOTASET=0 waits for the download's end */
  long long rd_off; /* AT+TCREADFWDATA's position (RAM; AT+TCFWINFO? resets it) */
  long rd_want;
};

static const char *who(const struct tc_ota *o) { return o->s->m->name; }
static struct vm_at *at_of(struct tc_ota *o) { return &o->s->m->at; }

/* ---- update_firmware and friends (tc_replies.h) --------------------------- */

static bool copy_str(const cJSON *v, char *dst, size_t cap) {
  if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= cap) return false;
  strcpy(dst, v->valuestring);
  return true;
}

static bool name_of_url(const char *url, char *name, size_t cap) {
  const char *p = strstr(url, "://");
  if (!p || !(p = strchr(p + 3, '/'))) return false;
  size_t end = strcspn(p, "?#");
  const char *slash = p;
  for (const char *q = p; q < p + end; q++)
    if (*q == '/') slash = q;
  size_t n = (size_t)(p + end - slash - 1);
  if (n == 0 || n >= cap) return false;
  memcpy(name, slash + 1, n);
  name[n] = '\0';
  return true;
}

enum tc_ota_msg tc_parse_ota_msg(const void *payload, size_t len, struct tc_ota_update *u) {
  cJSON *doc = cJSON_ParseWithLength(payload, len);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "type");
  enum tc_ota_msg kind = TC_OTA_MSG_OTHER;
  if (!cJSON_IsString(type)) goto out;
  if (!strcmp(type->valuestring, "report_version_rsp")) {
    long long rc;
    kind = vm_json_int(cJSON_GetObjectItemCaseSensitive(doc, "result_code"), -VM_JSON_INT_MAX,
                       VM_JSON_INT_MAX, &rc) && rc == 0
               ? TC_OTA_MSG_VERSION_OK
               : TC_OTA_MSG_VERSION_ERR;
    goto out;
  }
  if (strcmp(type->valuestring, "update_firmware")) goto out;
  kind = TC_OTA_MSG_BAD_UPDATE;
  memset(u, 0, sizeof *u);
  const cJSON *md5 = cJSON_GetObjectItemCaseSensitive(doc, "md5sum");
  if (!copy_str(cJSON_GetObjectItemCaseSensitive(doc, "version"), u->version, sizeof u->version) ||
      !copy_str(cJSON_GetObjectItemCaseSensitive(doc, "url"), u->url, sizeof u->url) ||
      !copy_str(md5, u->md5, sizeof u->md5) || strlen(u->md5) != 32 ||
      strspn(u->md5, "0123456789abcdefABCDEF") != 32 ||
      !vm_json_int(cJSON_GetObjectItemCaseSensitive(doc, "file_size"), 1, TC_OTA_MAX_SIZE,
                   &u->size))
    goto out;
  if (strncmp(u->url, "https://", 8) && strncmp(u->url, "http://", 7)) goto out;
  if (!name_of_url(u->url, u->name, sizeof u->name)) goto out;
  kind = TC_OTA_MSG_UPDATE;
out:
  cJSON_Delete(doc);
  return kind;
}

/* ---- the record ------------------------------------------------------------ */

static bool record_load(struct tc_state *s, struct fw_record *r) {
  const cJSON *o = vm_store_get(&s->m->store, TC_STORE_FWINFO);
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");
  memset(r, 0, sizeof *r);
  r->state = FW_NONE;
  long long max;
  if (!cJSON_IsString(st)) return false;
  for (int i = 0; i < FW_NONE; i++)
    if (!strcmp(st->valuestring, fw_states[i])) r->state = (enum fw_state)i;
  const cJSON *md5 = cJSON_GetObjectItemCaseSensitive(o, "md5");
  if (r->state == FW_NONE ||
      !copy_str(cJSON_GetObjectItemCaseSensitive(o, "name"), r->name, sizeof r->name) ||
      !copy_str(cJSON_GetObjectItemCaseSensitive(o, "version"), r->version, sizeof r->version) ||
      !vm_json_int(cJSON_GetObjectItemCaseSensitive(o, "size"), 0, TC_OTA_MAX_SIZE, &r->size) ||
      !vm_json_int(cJSON_GetObjectItemCaseSensitive(o, "downloaded"), 0, r->size, &r->downloaded) ||
      !vm_json_int(cJSON_GetObjectItemCaseSensitive(o, "max"), 0, TC_OTA_MAX_SIZE, &max)) {
    r->state = FW_NONE; /* a damaged record is no record */
    return false;
  }
  if (cJSON_IsString(md5) && strlen(md5->valuestring) == 32) strcpy(r->md5, md5->valuestring);
  r->max = (long)max;
  return true;
}

static void record_save(struct tc_ota *o, enum fw_state state, const char *md5,
                        vm_store_cb cb) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "state", fw_states[state]);
  cJSON_AddStringToObject(j, "name", o->up.name);
  cJSON_AddStringToObject(j, "version", o->up.version);
  cJSON_AddNumberToObject(j, "size", (double)o->up.size);
  cJSON_AddNumberToObject(j, "downloaded", (double)o->got);
  cJSON_AddStringToObject(j, "md5", md5 ? md5 : "");
  cJSON_AddNumberToObject(j, "max", (double)tc_ota_area_max(o->s));
  vm_store_put(&o->s->m->store, TC_STORE_FWINFO, j);
  vm_store_commit(&o->s->m->store, cb, o);
}

static void record_erase(struct tc_ota *o) {
  vm_store_put(&o->s->m->store, TC_STORE_FWINFO, NULL);
  vm_store_commit(&o->s->m->store, NULL, NULL);
}

const char *tc_fw_version(struct tc_state *s) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(vm_store_get(&s->m->store, TC_STORE_SELFOTA),
                                                    "version");
  return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : s->cfg->fw_version;
}

const struct tc_variant *tc_fw_variant(struct tc_state *s) {
  const char *v = tc_fw_version(s);
  if (v == s->cfg->fw_version) return s->cfg->variant;
  return tc_variant_of_version(s->cfg->variant->chip, v);
}

/* ---- reports (§7.5) -------------------------------------------------------- */

static void publish(struct tc_ota *o, const char *topic_fmt, int qos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void publish(struct tc_ota *o, const char *topic_fmt, int qos, const char *fmt, ...) {
  const struct tc_devinfo *d = tc_mqtt_device(o->s);
  char topic[TC_MAX_TOPIC + 1], msg[512];
  va_list ap;
  snprintf(topic, sizeof topic, topic_fmt, d->pid, d->dn);
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (tc_mqtt_svc_publish(o->s, topic, msg, qos) < 0)
    vm_log_info(who(o), "OTA: report not sent (MQTT down): %s", msg);
}

/* The version report, and on v2.1.1 the module firmware's resource report. */
static int report_version(struct tc_ota *o) {
  const struct tc_devinfo *d = tc_mqtt_device(o->s);
  char topic[TC_MAX_TOPIC + 1], msg[256];
  snprintf(topic, sizeof topic, TC_OTA_REPORT_TOPIC_FMT, d->pid, d->dn);
  snprintf(msg, sizeof msg, TC_OTA_REPORT_VERSION_FMT, o->version);
  if (tc_mqtt_svc_publish(o->s, topic, msg, 1) < 0) return -1;
  const struct tc_variant *v = o->s->cfg->variant;
  if (v->self_ota_report)
    publish(o, TC_OTA_RES_TOPIC_FMT, 1, TC_OTA_RES_REPORT_FMT, v->self_ota_file,
            tc_fw_version(o->s));
  return 0;
}

static void report_progress(struct tc_ota *o, int pct) {
  o->report_pct = pct;
  o->report_ms = uv_now(o->s->m->loop);
  publish(o, TC_OTA_REPORT_TOPIC_FMT, 0, TC_OTA_REPORT_PROGRESS_FMT, pct, o->up.version);
}

static void report_fail(struct tc_ota *o, int rc) {
  const char *msg = rc == TC_OTA_RC_MD5 && o->s->cfg->variant->ota_md5_msg ? TC_OTA_MSG_MD5
                                                                           : TC_OTA_MSG_TIMEOUT;
  publish(o, TC_OTA_REPORT_TOPIC_FMT, 1, TC_OTA_REPORT_FAIL_FMT, rc, msg, o->up.version);
}

/* ---- the task ---------------------------------------------------------------- */

static bool is_self(const struct tc_ota *o, const char *name) {
  const struct tc_variant *v = o->s->cfg->variant;
  if (!v->self_ota_file) return false;
  return v->self_ota_prefix ? !strncmp(name, v->self_ota_file, strlen(v->self_ota_file))
                            : !strcmp(name, v->self_ota_file);
}

/* The image file of an area, made on first use. */
static struct tc_fwfile *area_file(struct tc_ota *o, bool self) {
  if (o->file && o->file_self != self) {
    if (tc_fw_busy(o->file)) return NULL;
    tc_fw_free(o->file);
    o->file = NULL;
  }
  if (!o->file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", o->s->m->store.dir, self ? "fw_esp.bin" : "fw_mcu.bin");
    o->file = tc_fw_new(o->s->m->loop, path);
    o->file_self = self;
  }
  return o->file;
}

static void task_end(struct tc_ota *o) {
  o->running = false;
  o->phase = DL_IDLE;
  o->fails = 0;
  o->s->fw_downloading = false;
}

static void stop_done(struct tc_ota *o) {
  if (!o->stop_pending) return;
  o->stop_pending = false;
  vm_at_puts(at_of(o), TC_OTASET_OK);
  vm_at_complete(at_of(o), VM_AT_DONE);
}

static void fail(struct tc_ota *o, int code);

static void retry_cb(uv_timer_t *t) {
  struct tc_ota *o = t->data;
  o->phase = DL_IDLE;
  if (report_version(o) < 0) vm_log_info(who(o), "OTA: version report not sent (MQTT down)");
}

static void failed_flushed(void *data, long long status) {
  struct tc_ota *o = data;
  o->file_open = false;
  report_fail(o, TC_OTA_RC_FAIL);
  o->fails++;
  if (o->got > 0 && status == 0) /* resume point: only bytes already on disk */
    record_save(o, o->self ? FW_ESP_DOWNLOADING : FW_MCU_DOWNLOADING, NULL, NULL);
  vm_log_info(who(o), "OTA: download of %s %s failed (%d) at %lld of %lld bytes, attempt %d",
              o->up.name, o->up.version, o->err, o->got, o->up.size, o->fails);
  if (o->running && tc_mqtt_connected(o->s) && o->fails <= TC_OTA_RETRIES) {
    o->s->fw_downloading = false;
    o->phase = DL_RETRY;
    uv_timer_start(&o->timer, retry_cb, TC_OTA_RETRY_WAIT_MS, 0);
  } else {
    vm_at_urcf(at_of(o), TC_URC_OTA_FAIL_FMT, o->err);
    task_end(o);
  }
  stop_done(o);
}

/* Every failure but the MD5's: the bytes held are kept for a resume. */
static void fail(struct tc_ota *o, int code) {
  if (o->phase == DL_FAILING) return;
  o->err = code;
  o->phase = DL_FAILING;
  vm_http_cancel(&o->req);
  uv_timer_stop(&o->timer);
  o->hold = false;
  if (o->file_open && tc_fw_flush(o->file, -1, failed_flushed, o) == 0) return;
  failed_flushed(o, -EIO);
}

static void reset_cb(uv_timer_t *t) {
  struct tc_ota *o = t->data;
  vm_module_reboot(o->s->m); /* into the new version (tc_fw_version) */
}

static void valid_stored(void *data, int status) {
  struct tc_ota *o = data;
  if (o->phase != DL_FINISH) return; /* the power went first */
  if (status < 0) {
    fail(o, TC_E_FLASH);
    return;
  }
  publish(o, TC_OTA_REPORT_TOPIC_FMT, 1, TC_OTA_REPORT_DONE_FMT, o->up.version);
  vm_at_urc(at_of(o), TC_URC_OTA_SUCCESS, strlen(TC_URC_OTA_SUCCESS));
  vm_log_info(who(o), "OTA: %s %s (%lld bytes) downloaded and verified", o->up.name,
              o->up.version, o->up.size);
  if (o->self) {
    vm_at_urc(at_of(o), TC_URC_OTA_RESET, strlen(TC_URC_OTA_RESET));
    o->phase = DL_RESET;
    uv_timer_start(&o->timer, reset_cb, TC_OTA_RESET_WAIT_MS, 0);
    return;
  }
  task_end(o);
  stop_done(o);
}

static void finished_flushed(void *data, long long status) {
  struct tc_ota *o = data;
  o->file_open = false;
  if (status < 0) {
    fail(o, TC_E_FLASH);
    return;
  }
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  char hex[33];
  EVP_DigestFinal_ex(o->md, d, &n);
  for (unsigned i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
  if (strcmp(hex, o->up.md5)) { /* the SDK compares the strings: no retry */
    vm_log_info(who(o), "OTA: MD5 of %s is %s, the cloud said %s", o->up.name, hex, o->up.md5);
    report_fail(o, TC_OTA_RC_MD5);
    record_erase(o);
    vm_at_urcf(at_of(o), TC_URC_OTA_FAIL_FMT, TC_E_NO_FW);
    task_end(o);
    stop_done(o);
    return;
  }
  if (o->self) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "version", o->up.version);
    vm_store_put(&o->s->m->store, TC_STORE_SELFOTA, j);
  }
  record_save(o, o->self ? FW_ESP_VALID : FW_MCU_VALID, hex, valid_stored);
}

static void finish(struct tc_ota *o) {
  o->phase = DL_FINISH;
  if (tc_fw_flush(o->file, o->up.size, finished_flushed, o) < 0) fail(o, TC_E_FLASH);
}

static void mqtt_wait_cb(uv_timer_t *t) {
  struct tc_ota *o = t->data;
  o->hold = false;
  vm_http_resume(&o->req);
}

static void room_cb(void *data) {
  struct tc_ota *o = data;
  if (!o->hold) vm_http_resume(&o->req);
}

/* Once per 2 KiB chunk, as the firmware's loop: MQTT down three checks in a
 * row (a second apart) fails the download with 208. false: fail now. */
static bool mqtt_check(struct tc_ota *o) {
  if (o->got - o->checked < TC_OTA_CHUNK && o->got < o->up.size) return true;
  o->checked = o->got;
  if (tc_mqtt_connected(o->s)) {
    o->mqtt_down = 0;
    return true;
  }
  if (++o->mqtt_down > TC_OTA_MQTT_CHECKS) return false;
  vm_log_info(who(o), "OTA: MQTT disconnected %d time(s) during the download", o->mqtt_down);
  o->hold = true; /* the firmware sleeps a second before its next chunk */
  uv_timer_start(&o->timer, mqtt_wait_cb, TC_OTA_MQTT_WAIT_MS, 0);
  return true;
}

static int on_data(struct vm_http_req *req, const void *buf, size_t len, void *data) {
  struct tc_ota *o = data;
  long status = vm_http_status(req);
  if (status != 200 && status != 206) return 0; /* an error page: done() fails it */
  if (o->hold) return VM_HTTP_PAUSE;
  if (o->first_data) {
    if (status == 200 && o->got > 0) { /* the server ignored the range: from 0 */
      vm_log_info(who(o), "OTA: the server ignored the range: downloading %s from 0", o->up.name);
      EVP_DigestInit_ex(o->md, EVP_md5(), NULL);
      o->got = o->checked = 0;
      tc_fw_seek(o->file, 0);
    }
    o->first_data = false;
    report_progress(o, 0);
  }
  size_t take = len;
  if ((long long)take > o->up.size - o->got) take = (size_t)(o->up.size - o->got);
  if (take == 0) return 0; /* past the size the cloud gave: not part of the image */
  int rc = tc_fw_write(o->file, buf, take);
  if (rc == -EAGAIN) {
    tc_fw_on_room(o->file, room_cb, o);
    return VM_HTTP_PAUSE;
  }
  if (rc < 0) {
    o->err = TC_E_FLASH;
    return -1;
  }
  EVP_DigestUpdate(o->md, buf, take);
  o->got += (long long)take;
  int pct = (int)(o->got * 100 / o->up.size);
  if (o->got == o->up.size ? o->report_pct != 100
                           : pct != o->report_pct &&
                                 uv_now(o->s->m->loop) - o->report_ms >= TC_OTA_PROGRESS_MS)
    report_progress(o, pct);
  if (!mqtt_check(o)) {
    o->err = TC_E_STATE;
    return -1;
  }
  return 0;
}

static void http_done(struct vm_http_req *req, int result, long status, const char *body,
                      size_t len, void *data) {
  struct tc_ota *o = data;
  (void)req, (void)body, (void)len;
  uv_timer_stop(&o->timer);
  o->hold = false;
  if (o->err) fail(o, o->err);
  else if (result == -ETIMEDOUT) fail(o, TC_E_TIMEOUT);
  else if (result < 0 || (status != 200 && status != 206)) {
    vm_log_info(who(o), "OTA: GET %s: %s", o->up.name,
                result < 0 ? req->error : status == 416 ? "HTTP 416" : "HTTP error");
    fail(o, TC_E_HTTP);
  } else if (o->got < o->up.size)
    fail(o, TC_E_HTTP); /* the body ended early */
  else
    finish(o);
}

static void http_start(struct tc_ota *o) {
  char range[64];
  snprintf(range, sizeof range, TC_OTA_RANGE_FMT, o->got, o->up.size);
  const char *headers[] = {range, NULL};
  struct vm_http_opts opts = {.url = o->up.url, .headers = headers,
                              .ca_file = o->s->cfg->ota_ca_file,
                              .idle_timeout_ms = o->s->cfg->ota_read_timeout_ms,
                              .on_data = on_data};
  if (!o->http_ready) {
    vm_http_init(&o->http, o->s->m->loop, o->s->m->name);
    o->http_ready = true;
  }
  o->phase = DL_HTTP;
  o->first_data = true;
  o->checked = o->got;
  o->err = 0;
  vm_log_info(who(o), "OTA: downloading %s %s from byte %lld of %lld", o->up.name, o->up.version,
              o->got, o->up.size);
  if (vm_http_start(&o->http, &o->req, &opts, http_done, o) < 0) fail(o, TC_E_HTTP);
}

static void prepared(void *data, long long status) {
  struct tc_ota *o = data;
  if (status < 0 && o->got > 0) { /* the stored bytes cannot be read: start over */
    vm_log_info(who(o), "OTA: cannot resume %s: %s", o->up.name, strerror((int)-status));
    o->got = 0;
    EVP_DigestInit_ex(o->md, EVP_md5(), NULL);
    if (tc_fw_begin(o->file, 0, o->md, prepared, o) == 0) return;
    status = -EIO;
  }
  if (status < 0) {
    fail(o, TC_E_FLASH);
    return;
  }
  o->file_open = true;
  if (o->got == o->up.size) finish(o); /* everything was already there */
  else http_start(o);
}

/* The resume check (_update_fw_downloaded_size): the stored record of the
 * same file and version, not past its size; the module's own image only
 * after a failure in this boot. */
static long long resume_offset(struct tc_ota *o) {
  struct fw_record r;
  if (o->self && o->fails == 0) return 0;
  if (!record_load(o->s, &r) || (r.state != FW_MCU_DOWNLOADING && r.state != FW_ESP_DOWNLOADING))
    return 0;
  if (strcmp(r.name, o->up.name) || strcmp(r.version, o->up.version) || r.downloaded > o->up.size)
    return 0;
  return r.downloaded;
}

static void start_download(struct tc_ota *o, const struct tc_ota_update *u) {
  o->up = *u;
  o->self = is_self(o, u->name);
  o->s->fw_downloading = true;
  vm_at_urc(at_of(o), TC_URC_OTA_ENTER, strlen(TC_URC_OTA_ENTER));
  o->phase = DL_PREP;
  o->err = o->mqtt_down = 0;
  o->report_pct = -1;
  if (!o->md && !(o->md = EVP_MD_CTX_new())) {
    fail(o, TC_E_MEM);
    return;
  }
  EVP_DigestInit_ex(o->md, EVP_md5(), NULL);
  o->got = resume_offset(o);
  struct tc_fwfile *f = area_file(o, o->self);
  if (!f) {
    fail(o, TC_E_FLASH);
    return;
  }
  if (o->got == 0) {
    if (!o->self && u->size > tc_ota_area_max(o->s)) { /* erase_fw_flash_sectors refuses */
      vm_log_info(who(o), "OTA: %s (%lld bytes) does not fit the OTA area (%ld bytes)", u->name,
                  u->size, tc_ota_area_max(o->s));
      fail(o, TC_E_FLASH);
      return;
    }
    if (cJSON_IsObject(vm_store_get(&o->s->m->store, TC_STORE_FWINFO))) record_erase(o);
  }
  if (tc_fw_begin(f, o->got, o->md, prepared, o) < 0) fail(o, TC_E_FLASH);
}

void tc_ota_on_message(struct tc_state *s, const char *topic, const void *payload, int len) {
  struct tc_ota *o = s->ota;
  struct tc_ota_update u;
  (void)topic;
  if (!o->running) return;
  switch (tc_parse_ota_msg(payload, (size_t)len, &u)) {
  case TC_OTA_MSG_UPDATE:
    if (o->phase != DL_IDLE) { /* the SDK ignores pushes while it fetches */
      vm_log_info(who(o), "OTA: update_firmware ignored: a download is in progress");
      return;
    }
    start_download(o, &u);
    return;
  case TC_OTA_MSG_BAD_UPDATE:
  case TC_OTA_MSG_VERSION_ERR:
    /* the SDK records an error and the task ends, silently */
    if (o->phase != DL_IDLE) return;
    vm_log_warn(who(o), "OTA: %s: the OTA task ends (as the firmware's)",
                len > 0 && strstr((const char *)payload, "report_version_rsp")
                    ? "the cloud refused the version report"
                    : "malformed update_firmware");
    task_end(o);
    return;
  case TC_OTA_MSG_VERSION_OK:
  case TC_OTA_MSG_OTHER: return;
  }
}

void tc_ota_task_end(struct tc_state *s) {
  struct tc_ota *o = s->ota;
  if (o && o->phase == DL_IDLE) o->running = false; /* a download fails by its MQTT checks */
}

/* ---- AT+TCOTASET --------------------------------------------------------- */

static enum vm_at_result otaset_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_OTASET_TEST);
  return VM_AT_OK;
}

static enum vm_at_result otaset_query(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_ota *o = tc_state_of(at)->ota;
  (void)a;
  vm_at_printf(at, TC_OTASET_QUERY_FMT, o->enabled ? 1 : 0, o->version);
  return VM_AT_OK;
}

/* do_fw_ota_update(true): subscribe, report. 0, or the FAIL code. */
static int ota_enable(struct tc_ota *o) {
  const struct tc_devinfo *d = tc_mqtt_device(o->s);
  char topic[TC_MAX_TOPIC + 1];
  snprintf(topic, sizeof topic, TC_OTA_UPDATE_TOPIC_FMT, d->pid, d->dn);
  if (tc_mqtt_svc_subscribe(o->s, topic, 1) < 0) return TC_E_EXEC;
  o->running = true;
  if (report_version(o) < 0) {
    o->running = false;
    return TC_E_EXEC;
  }
  return 0;
}

static enum vm_at_result otaset_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct tc_ota *o = s->ota;
  long mode;
  const char *ver;
  size_t n;
  if (a->count != 2 || vm_at_arg_int(a, 0, &mode) != VM_AT_ARG_OK || mode < 0 || mode > 3 ||
      vm_at_arg_str(a, 1, &ver, &n) != VM_AT_ARG_OK || n == 0 || n > TC_OTA_MAX_VERSION)
    return tc_cme(at, TC_E_PARA);
  o->enabled = mode != 0; /* set before the connection check (quirk, §3.10) */
  memcpy(o->version, ver, n + 1);
  if (mode != 0) {
    if (!tc_mqtt_connected(s)) return tc_cme(at, TC_E_STATE);
    if (s->fw_downloading) return tc_cme(at, TC_E_DEALING);
  }
  vm_at_puts(at, TC_HANDLER_OK);
  if (mode == 0) { /* stops the task; a running download ends with 208 first */
    bool downloading = o->phase != DL_IDLE && o->phase != DL_RETRY;
    o->running = false;
    if (downloading && o->phase != DL_RESET) {
      o->stop_pending = true;
      fail(o, TC_E_STATE);
      if (o->stop_pending) return VM_AT_PENDING;
      return VM_AT_DONE;
    }
    if (o->phase == DL_RETRY) { /* the task was waiting to retry: it ends */
      uv_timer_stop(&o->timer);
      vm_at_urcf(at, TC_URC_OTA_FAIL_FMT, o->err);
      task_end(o);
    }
    vm_at_puts(at, TC_OTASET_OK);
    return VM_AT_DONE;
  }
  int code = ota_enable(o);
  if (code) vm_at_printf(at, TC_OTASET_FAIL_FMT, code);
  else vm_at_puts(at, TC_OTASET_OK);
  return VM_AT_DONE;
}

/* ---- AT+TCFWINFO / AT+TCREADFWDATA ---------------------------------------- */

static enum vm_at_result fwinfo_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_FWINFO_TEST);
  return VM_AT_OK;
}

/* The record gate shared by both: 200 downloading, 207 no record, 208 not
 * an MCU image ready to read; 0 with *r loaded. */
static int record_gate(struct tc_state *s, struct fw_record *r) {
  if (s->fw_downloading) return TC_E_DEALING;
  if (!record_load(s, r)) return TC_E_FLASH;
  return r->state == FW_MCU_VALID ? 0 : TC_E_STATE;
}

static enum vm_at_result fwinfo_query(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct fw_record r;
  (void)a;
  int gate = record_gate(s, &r);
  if (gate) return tc_cme(at, gate);
  s->ota->rd_off = 0;
  vm_at_puts(at, TC_HANDLER_OK); /* OK first, then the line, and nothing more */
  vm_at_printf(at, TC_FWINFO_FMT, r.version, r.size, r.md5, r.max);
  return VM_AT_DONE;
}

static enum vm_at_result readfw_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_READFW_TEST);
  return VM_AT_OK;
}

static void read_done(void *data, long long n) {
  struct tc_ota *o = data;
  struct vm_at *at = at_of(o);
  vm_at_puts(at, TC_HANDLER_OK);
  if (n < 0 || n < o->rd_want) { /* the file is shorter than its record */
    vm_log_warn(who(o), "OTA: reading the image failed: %s", n < 0 ? strerror((int)-n) : "short");
    vm_at_mark_error(at);
    vm_at_printf(at, TC_CME_FMT, TC_E_FLASH);
  } else {
    vm_at_printf(at, TC_READFW_HEAD_FMT, (long)n);
    vm_at_write(at, tc_fw_read_data(o->file), (size_t)n);
    vm_at_puts(at, TC_READFW_TAIL);
    o->rd_off += n;
  }
  vm_at_complete(at, VM_AT_DONE);
}

static enum vm_at_result readfw_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct tc_ota *o = s->ota;
  struct fw_record r;
  long len;
  if (s->fw_downloading) return tc_cme(at, TC_E_DEALING);
  if (a->count != 1 || vm_at_arg_int(a, 0, &len) != VM_AT_ARG_OK) return tc_cme(at, TC_E_PARA);
  int gate = record_gate(s, &r);
  if (gate) return tc_cme(at, gate);
  if (r.size == 0) return tc_cme(at, TC_E_NO_FW);
  if (o->rd_off >= r.size) return tc_cme(at, TC_E_STATE);
  if (len <= 0 || len > TC_MAX_READFW) return tc_cme(at, TC_E_PARA);
  if (o->rd_off % 4) { /* flash reads start on a word: after an odd-sized read */
    vm_at_puts(at, TC_HANDLER_OK);
    return tc_cme(at, TC_E_FLASH);
  }
  long long n = r.size - o->rd_off < len ? r.size - o->rd_off : len;
  struct tc_fwfile *f = area_file(o, false);
  o->rd_want = (long)n;
  if (!f || tc_fw_read(f, o->rd_off, (size_t)n, read_done, o) < 0) {
    vm_at_puts(at, TC_HANDLER_OK);
    return tc_cme(at, TC_E_FLASH);
  }
  return VM_AT_PENDING;
}

const struct vm_at_cmd tc_ota_cmds[] = {
    {.name = "+TCOTASET", .test = otaset_test, .query = otaset_query, .set = otaset_set},
    {.name = "+TCFWINFO", .test = fwinfo_test, .query = fwinfo_query},
    {.name = "+TCREADFWDATA", .test = readfw_test, .set = readfw_set},
};
const size_t tc_ota_ncmds = sizeof tc_ota_cmds / sizeof tc_ota_cmds[0];

/* ---- life cycle ------------------------------------------------------------ */

int tc_ota_init(struct tc_state *s) {
  struct tc_ota *o = calloc(1, sizeof *o);
  if (!o) return -1;
  o->s = s;
  uv_timer_init(s->m->loop, &o->timer);
  o->timer.data = o;
  s->ota = o;
  return 0;
}

/* A power cut: RAM state gone, what flash holds stays. */
void tc_ota_power_off(struct tc_state *s) {
  struct tc_ota *o = s->ota;
  if (!o) return;
  vm_http_cancel(&o->req);
  uv_timer_stop(&o->timer);
  if (o->file) tc_fw_abandon(o->file); /* a read in flight ends without its callback */
  o->enabled = o->running = o->hold = o->stop_pending = o->file_open = false;
  o->version[0] = '\0';
  o->phase = DL_IDLE;
  o->fails = 0;
  o->rd_off = 0;
  s->fw_downloading = false;
}

static void timer_closed(uv_handle_t *h) { free(h->data); }

void tc_ota_destroy(struct tc_state *s) {
  struct tc_ota *o = s->ota;
  if (!o) return;
  vm_http_cancel(&o->req);
  if (o->http_ready) vm_http_close(&o->http, NULL);
  tc_fw_free(o->file);
  EVP_MD_CTX_free(o->md);
  s->ota = NULL;
  uv_close((uv_handle_t *)&o->timer, timer_closed); /* frees o once closed */
}
