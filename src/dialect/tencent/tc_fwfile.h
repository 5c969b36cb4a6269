/* tc_fwfile.h - the simulated OTA flash area of a tencent module: one image
 * file in the module's state directory, touched only on the libuv threadpool
 * (open, erase, write, fsync and read never block the loop), one job at a
 * time, created on first use.
 *
 * A download begins with tc_fw_begin() (the erase at offset 0, or the MD5 of
 * the bytes already stored when resuming), queues bytes with tc_fw_write()
 * (copied into a bounded buffer: -EAGAIN asks the caller to stop its source
 * until the room callback runs), and ends with tc_fw_flush() (every queued
 * byte written, the file cut at its size and fsynced, the descriptor
 * closed): only then may a record that counts those bytes be stored, which
 * is what makes a kill -9 at any moment safe. tc_fw_read() reads outside a
 * download. The callbacks run on the loop; none runs after tc_fw_free(). */
#ifndef TC_FWFILE_H
#define TC_FWFILE_H

#include <stddef.h>
#include <uv.h>

struct tc_fwfile;
struct evp_md_ctx_st;

/* status: 0 or a negative errno (read: the byte count, or a negative errno) */
typedef void (*tc_fw_cb)(void *data, long long status);

struct tc_fwfile *tc_fw_new(uv_loop_t *loop, const char *path);
/* Erases the area (offset 0) or feeds the first offset bytes to md (-EIO
 * when the file holds fewer). -EBUSY while another job runs. */
int tc_fw_begin(struct tc_fwfile *f, long long offset, struct evp_md_ctx_st *md, tc_fw_cb cb,
                void *data);
/* Queues n bytes at the write position: 0, -EAGAIN (no room now: room_cb
 * runs when there is), or the first write error of this download. */
int tc_fw_write(struct tc_fwfile *f, const void *buf, size_t n);
void tc_fw_on_room(struct tc_fwfile *f, void (*room_cb)(void *data), void *data);
/* Moves the write position (only with nothing queued): a restart from 0. */
void tc_fw_seek(struct tc_fwfile *f, long long pos);
/* Ends the download: writes what is queued, truncates at size (< 0: keeps
 * the length), fsyncs, closes; status 0 or the first error. */
int tc_fw_flush(struct tc_fwfile *f, long long size, tc_fw_cb cb, void *data);
/* Drops what is queued and closes the file (a power cut: the bytes already
 * written stay, the record says how many count). */
void tc_fw_abandon(struct tc_fwfile *f);
/* Reads up to len bytes at off into a buffer of f's; cb's status is the
 * count, and tc_fw_read_data() the bytes, valid until cb returns. */
int tc_fw_read(struct tc_fwfile *f, long long off, size_t len, tc_fw_cb cb, void *data);
const void *tc_fw_read_data(const struct tc_fwfile *f);
int tc_fw_busy(const struct tc_fwfile *f);
/* Frees f now, or when its job in flight has ended (no callback runs). */
void tc_fw_free(struct tc_fwfile *f);

#endif
