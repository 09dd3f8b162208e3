/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The common layer's helpers, below libvmir, the servers and the tools
 * (common/, built into libvmir-common.a): logging (log.c), key files and
 * the client configuration (conf.c), addresses (addr.c), sizes (size.c),
 * clocks (clock.c), full-length I/O (io.c) and compressed objects
 * (zpack.c). Not installed.
 */
#ifndef VMIR_UTIL_H
#define VMIR_UTIL_H

#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "vmir_proto.h"

#define VMIR_MAX_SERVERS	64
#define VMIR_CHUNK_DEFAULT	(256u << 10)	/* unless configured */

/* --- logging: "<prog>: <level>: message" on stderr ------------------------ */
void vmir_log_init(const char *prog);
void vmir_log_set_verbose(bool verbose);
__attribute__((format(printf, 1, 2))) void vmir_err(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void vmir_warn(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void vmir_info(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void vmir_dbg(const char *fmt, ...);
/* "connection refused": strerror() with a lower-case first letter */
const char *vmir_errstr(int err, char *buf, size_t len);

/* --- compressed objects (zpack.c, zstd) -----------------------------------
 * vmir_zpack() compresses len bytes at level VMIR_ZSTD_LEVEL into a
 * malloc()ed *out and returns its length when that saves at least an
 * eighth; else it returns 0 (*out NULL) and the object travels as it is.
 * vmir_zunpack() decompresses one frame into dst (cap bytes) and returns
 * the content's length, or -EBADMSG for anything that is not a frame of at
 * most cap bytes that is larger than its packed form (-ENOMEM).
 * vmir_zunpack_inplace() does the same for a frame already in the
 * destination (len packed bytes in a buffer of cap).
 */
#define VMIR_ZSTD_LEVEL		1	/* docs/performance.md says why */
uint32_t vmir_zpack(const void *src, uint32_t len, void **out);
int64_t vmir_zunpack(void *dst, uint32_t cap, const void *src, uint32_t len);
int64_t vmir_zunpack_inplace(void *buf, uint32_t cap, uint32_t len);

/* --- key files ------------------------------------------------------------
 * A key file holds 64 hex digits and a newline. It must be a regular file
 * of mode 0600 (no group/other bits) or loading refuses with -EPERM and a
 * message naming the file and the fix (chmod 600).
 */
int vmir_key_generate(const char *path);	/* O_EXCL, mode 0600 */
int vmir_key_load(const char *path, uint8_t key[VMIR_KEY_LEN]);

/* --- addresses: "IPv4:PORT", "[IPv6]:PORT", "localhost:PORT" --------------- */
struct vmir_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[VMIR_ADDR_MAX];	/* as given, used as rendezvous identity */
};
int vmir_addr_parse(const char *s, struct vmir_addr *a);
/* 0 if s is a numeric "IPv4:PORT" or "[IPv6]:PORT", port not 0 (no lookup) */
int vmir_addr_numeric(const char *s);
/* the bound address of a listening socket, as "IP:PORT" */
int vmir_sock_name(int fd, char *out, size_t outlen);

/* --- sizes: "4096", "256K", "1M", "2G", "1T" (binary units) ----------------- */
int vmir_size_parse(const char *s, uint64_t *out);
/* "256K", "1.5G" for humans */
void vmir_size_format(uint64_t v, char *out, size_t outlen);

/* --- client configuration (INI, parsed with libinih) -----------------------
 *
 *   [cluster]
 *   key = /path/to/cluster.key       ; relative paths: relative to the file
 *   replicas = 2                     ; R, default 2 (capped at #servers)
 *   chunk_size = 256K                ; default for new images
 *   timeout_ms = 5000                ; per request
 *   [versiond]
 *   addr = 127.0.0.1:7400
 *   [chunkd]
 *   servers = 127.0.0.1:7401, 127.0.0.1:7402, 127.0.0.1:7403
 */
struct vmir_conf {
	char path[4096];
	char key_path[4096];
	uint8_t key[VMIR_KEY_LEN];
	unsigned int replicas;
	uint32_t chunk_size;
	unsigned int timeout_ms;
	struct vmir_addr versiond;
	struct vmir_addr chunkd[VMIR_MAX_SERVERS];
	unsigned int nchunkd;
};
/*
 * path NULL: $VMIR_CONF. Loads the key too. On error returns -errno and
 * writes a message naming the file, line and problem into err.
 */
int vmir_conf_load(const char *path, struct vmir_conf *conf, char *err,
		   size_t errlen);

/* --- clocks --------------------------------------------------------------- */
uint64_t vmir_now_ns(void);		/* CLOCK_REALTIME */
uint64_t vmir_mono_ns(void);		/* CLOCK_MONOTONIC */
/*
 * CLOCK_MONOTONIC_COARSE: the last tick (1-10 ms old), read without
 * touching the clock hardware. For deadlines and rate limits; on machines
 * whose clocksource has no vDSO path (HPET, acpi_pm: many VMs) a precise
 * read is a system call and a device register access.
 */
uint64_t vmir_coarse_ns(void);

/* --- I/O ------------------------------------------------------------------ */
/*
 * For processes that malloc() and free() a chunk-sized buffer per object:
 * with glibc's defaults such buffers are mmap()ed, or carved from a heap
 * that is trimmed again after the free, so every object faults fresh
 * zeroed pages in, which costs as much as the copies. Keep buffers up to
 * the largest object on the heap, and at most max_free bytes of it free.
 */
void vmir_heap_keep_buffers(size_t max_free);
/* write all / read all with EINTR handling; 0 or -errno (-EIO on EOF) */
int vmir_write_full(int fd, const void *buf, size_t len);
int vmir_read_full(int fd, void *buf, size_t len);
int vmir_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
int vmir_pread_full(int fd, void *buf, size_t len, uint64_t off);
bool vmir_buf_is_zero(const void *buf, size_t len);
/* fsync the directory containing path */
int vmir_fsync_dir(const char *dir);

#endif /* VMIR_UTIL_H */
