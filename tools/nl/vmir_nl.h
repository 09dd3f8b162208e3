/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir_nl: the generic netlink client of the vmir module, one module for
 * every program that speaks to it (vmir-helper, vmirctl, the kernel test
 * client). The protocol is include/uapi/linux/vmir.h.
 *
 * One socket serves both kinds of traffic:
 *  - requests that wait for their answer (vmir_nl_call(): control
 *    commands, status, dumps), matched to their ack by sequence number;
 *  - messages sent without waiting (vmir_nl_send(): CHUNK_READY,
 *    PREFETCH, CHUNK_CAPTURED from the helper's data path). Success sends
 *    nothing back; a failure comes back as an error message, and a
 *    PREFETCH comes back as its reply. Those, and the module's events
 *    (MISS, CAPTURE_NEEDED), are handed to the socket's handler
 *    (struct vmir_nl_handler) by vmir_nl_dispatch(), and also while
 *    vmir_nl_call() waits, so that nothing is lost or reordered.
 *
 * All functions return 0 or -errno. Messages for the user (the kernel's
 * extended ack, or what failed locally) go into a caller's buffer.
 */
#ifndef VMIR_NL_H
#define VMIR_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include "uapi/linux/vmir.h"

#define VMIR_NL_MSG_MAX	256		/* extended ack messages */

/*
 * What arrives on a socket besides the answers to its own vmir_nl_call():
 * on_msg gets every message of the family (events, replies to
 * vmir_nl_send()), already parsed; on_error the failure of a message sent
 * with vmir_nl_send(): the request's command and attributes as the kernel
 * echoed them (UNSPEC and all NULL if it did not), the -errno and the
 * extended ack message. Both run in the thread that reads the socket,
 * from vmir_nl_dispatch() or from inside vmir_nl_call().
 */
struct vmir_nl_handler {
	void (*on_msg)(void *arg, uint8_t cmd, struct nlattr **tb);
	void (*on_error)(void *arg, uint8_t cmd, struct nlattr **tb, int err,
			 const char *msg);
	void *arg;
};

struct vmir_nl {
	struct nl_sock *sk;
	int family;
	struct vmir_nl_handler h;	/* NULL members: dropped */
};

/*
 * Open a socket and resolve the family (a clear message when the module is
 * not loaded). @rcvbuf: receive buffer bytes, 0 for the default (1 MiB);
 * a helper receiving events wants a large one.
 */
int vmir_nl_open(struct vmir_nl *nl, size_t rcvbuf, char *err, size_t errlen);
void vmir_nl_close(struct vmir_nl *nl);
int vmir_nl_fd(const struct vmir_nl *nl);
void vmir_nl_set_handler(struct vmir_nl *nl, const struct vmir_nl_handler *h);

/* A request of @cmd (@flags: NLM_F_DUMP or 0); NULL when out of memory. */
struct nl_msg *vmir_nl_msg(const struct vmir_nl *nl, uint8_t cmd, int flags);
/* ... with VMIR_ATTR_DEV_ID already in it */
struct nl_msg *vmir_nl_dev_msg(const struct vmir_nl *nl, uint8_t cmd,
			       uint32_t dev_id);

/*
 * Parse one message of the family. Returns 0 and fills tb (indexed by
 * VMIR_ATTR_*) and *cmd, or -EPROTO when the attributes are malformed.
 */
int vmir_nl_parse(struct nl_msg *msg, uint8_t *cmd, struct nlattr **tb);

/* called for each reply message of a vmir_nl_call(); non-zero stops */
typedef int (*vmir_nl_reply_fn)(void *arg, uint8_t cmd, struct nlattr **tb);

/*
 * Send @msg (consumed) and wait for its ack, or for the end of its dump;
 * @reply runs for each answer message. Returns 0, the kernel's -errno
 * (with its extended ack message in @emsg), or the reply function's
 * error. Events arriving meanwhile go to the handler.
 */
int vmir_nl_call(struct vmir_nl *nl, struct nl_msg *msg,
		 vmir_nl_reply_fn reply, void *arg, char *emsg,
		 size_t emsglen);

/* Send @msg (consumed) without asking for an ack. */
int vmir_nl_send(struct vmir_nl *nl, struct nl_msg *msg);

/*
 * Hand everything queued on a non-blocking socket to the handler. Returns
 * 0 when the socket is drained; -ENOBUFS when the kernel dropped messages
 * because the receive buffer was full (the module sends its events again;
 * the caller should say so); other -errno on failure.
 */
int vmir_nl_dispatch(struct vmir_nl *nl);

/* Attribute helpers ------------------------------------------------------ */

/* u32 attribute or 0 */
uint32_t vmir_nl_u32(struct nlattr **tb, int attr);
uint64_t vmir_nl_u64(struct nlattr **tb, int attr);

/* VMIR_ATTR_CHUNKS of n (1..VMIR_CHUNKS_MAX) chunk indexes */
int vmir_nl_put_chunks(struct nl_msg *msg, const uint32_t *chunks, size_t n);
/*
 * The chunk list of a message: *chunks points into the message (netlink
 * attributes are 4-byte aligned: read the indexes in place), *n its
 * length; 0 chunks when the attribute is absent. -EPROTO when its length
 * is not a multiple of 4.
 */
int vmir_nl_get_chunks(struct nlattr **tb, const uint32_t **chunks,
		       size_t *n);

/* a device info (GET_STATUS reply, LIST dump message) */
struct vmir_nl_dev {
	uint32_t id;
	char disk[32];
	char image[VMIR_NAME_MAX];
	uint32_t version;
	uint64_t size;
	uint32_t chunk_size;
	uint32_t nchunks;
	uint32_t timeout_ms;
	uint32_t state;			/* enum vmir_dev_state */
	uint64_t flags;			/* VMIR_DEV_F_* */
	uint32_t nr_present, nr_dirty, nr_fetching, nr_parked;
	uint32_t nr_commit, nr_frozen;
	uint64_t stat[VMIR_STAT_MAX + 1];	/* by VMIR_STAT_* */
};
int vmir_nl_parse_dev(struct nlattr **tb, struct vmir_nl_dev *d);

/* GET_STATUS of one device; LIST into a malloc()ed array */
int vmir_nl_get_status(struct vmir_nl *nl, uint32_t dev_id,
		       struct vmir_nl_dev *d, char *emsg, size_t emsglen);
int vmir_nl_list(struct vmir_nl *nl, struct vmir_nl_dev **devs, size_t *n,
		 char *emsg, size_t emsglen);

/*
 * Chunk bitmaps (one bit per chunk, LSB first, DIV_ROUND_UP(nchunks, 8)
 * bytes). put_segment adds the segment of present/dirty (dirty may be
 * NULL: all clean) that starts at byte @off of the maps, at most
 * VMIR_MAP_SEG_MAX bytes; returns the bytes it covers or -EMSGSIZE.
 * get_state reads the GET_STATE dump of a device into the maps given
 * (NULL: not wanted); *has_commit (may be NULL) tells whether a commit
 * set came with it.
 */
int vmir_nl_put_segment(struct nl_msg *msg, const uint8_t *present,
			const uint8_t *dirty, size_t nbytes, size_t off);
int vmir_nl_get_state(struct vmir_nl *nl, uint32_t dev_id, uint64_t nchunks,
		      uint8_t *present, uint8_t *dirty, uint8_t *commit,
		      bool *has_commit, char *emsg, size_t emsglen);

#endif /* VMIR_NL_H */
