/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir: private structures shared by the module's parts.
 *
 *   vmir_main.c    module init/exit, device registry, device lifetime
 *   vmir_blk.c     blk-mq queue path: mirror I/O, timeouts, disk setup
 *   vmir_chunk.c   chunk state behind vmir_chunk.h: admission, parking,
 *                  wake-ups, commit, counters
 *   vmir_event.c   event outbox behind vmir_event.h: pending MISS and
 *                  CAPTURE_NEEDED, delivery, retry
 *   vmir_genl.c    generic netlink family "vmir" and the helper registry
 *   vmir_compat.h  wrappers for kernel calls that changed after 6.1
 *
 * Locking order: dev->ctl_lock (mutex) > vmir_lock (mutex) >
 * chunk gate (percpu rwsem, writers only in the commit path) >
 * chunk lock (spinlock) > outbox lock (spinlock); vmir_helper_lock and
 * dev->name_lock (spinlocks) are leaves.
 */
#ifndef VMIR_DEV_H
#define VMIR_DEV_H

#include <linux/bits.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>

#include <uapi/linux/vmir.h>

#define VMIR_SECTOR_SHIFT	9
#define VMIR_MAX_DEVICES	BIT(16)		/* ids and minors 0..65535 */
#define VMIR_MAX_HW_SECTORS	2048		/* 1 MiB per request */
/* Discard/write-zeroes: 1 GiB per request bounds the chunk walk. */
#define VMIR_MAX_DISCARD_SECTORS BIT(21)

struct vmir_chunks;

/*
 * Device lifetime (loop's Lo_unbound/Lo_bound/Lo_rundown). Transitions
 * are written under vmir_lock; SETUP -> LIVE also holds dev->ctl_lock.
 */
enum vmir_lifetime {
	/* In the registry, no disk yet. Owned by the genl handlers, which
	 * serialize on dev->ctl_lock; no I/O exists.
	 */
	VMIR_LIFE_SETUP,
	/* In the registry, disk added: the block layer issues requests. */
	VMIR_LIFE_LIVE,
	/* In the registry, disk deleted (STOP_DEVICE): no request exists
	 * any more, the chunk state is final and readable until
	 * REMOVE_DEVICE. Set with dev->ctl_lock held, which also guards
	 * dev->stopped for the control commands.
	 */
	VMIR_LIFE_STOPPED,
	/* Out of the registry (its id maps to NULL). Owned by the remover,
	 * which fails parked requests, deletes the disk and drops the
	 * registry reference; other holders of a reference may still read
	 * the device until they put it.
	 */
	VMIR_LIFE_REMOVING,
};

/*
 * Where a request is, and who owns it there. Changes between PARKED and
 * anything else happen under the chunk lock.
 */
enum vmir_cmd_state {
	/* Being executed by queue_rq or by its work item on dev->wq; that
	 * context alone may complete it. Timeouts leave it alone.
	 */
	VMIR_CMD_RUNNING,
	/* Parked in the chunk state, waiting for chunks (fetch or capture).
	 * Owned by the chunk lock: whoever unparks it under the lock owns it
	 * next (a waker queues it, a failure, timeout or removal completes
	 * it).
	 */
	VMIR_CMD_PARKED,
	/* Unparked by a waker (or punted by queue_rq), its work queued on
	 * dev->wq; owned by that work, which runs admission (it may park
	 * again).
	 */
	VMIR_CMD_QUEUED,
};

/* Why a request waits; both may be set over its life (stats count once). */
#define VMIR_WAIT_FETCH		BIT(0)
#define VMIR_WAIT_CAPTURE	BIT(1)

struct vmir_device;

/*
 * Per-request PDU, sized by set->cmd_size. The admission fields are set
 * by vmir_chunks_admit() and read by whoever owns the request.
 */
struct vmir_cmd {
	struct vmir_device *dev;
	struct list_head park_node;	/* parked list, chunk lock */
	struct work_struct work;	/* resume after a wake-up */
	enum vmir_cmd_state state;	/* chunk lock when PARKED */
	unsigned int waits;		/* VMIR_WAIT_*, chunk lock */
	u64 park_ns;			/* first park, 0 if never; chunk lock */
	u64 pos;			/* byte range [pos, end) and its */
	u64 end;			/* chunks [first, last] */
	u32 first;
	u32 last;
	bool write;			/* modifies the mirror */
	blk_status_t status;		/* for ->complete after a timeout */
};

struct vmir_device {
	int id;				/* /dev/vmir<id>, constant */
	refcount_t refs;		/* registry + genl handlers */
	enum vmir_lifetime lifetime;	/* vmir_lock */
	/* Owner netns, no reference. Written under vmir_lock and
	 * vmir_helper_lock, read under either.
	 */
	struct net *net;
	u64 add_flags;			/* VMIR_ADD_F_*, constant */
	u32 timeout_ms;			/* constant */

	struct mutex ctl_lock;		/* serializes control commands */
	bool disk_added;		/* ctl_lock */
	bool stopped;			/* ctl_lock: STOP_DEVICE ran */

	/* Chunk maps, parked requests, commit, events: own locks. */
	struct vmir_chunks *chunks;	/* constant */

	spinlock_t name_lock;
	char image[VMIR_NAME_MAX];	/* name_lock (commit --to renames) */
	char version[VMIR_NAME_MAX];	/* name_lock */

	struct file *mirror;		/* constant while requests exist */
	struct workqueue_struct *wq;	/* resumed requests + events */

	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
};

/* ADD_DEVICE parameters, validated by vmir_genl.c. */
struct vmir_add_params {
	const char *image;
	const char *version;
	u64 size;
	u32 chunk_size;
	u32 timeout_ms;
	u64 flags;
	struct file *mirror;		/* reference moves to the device */
	struct net *net;
};

/* A chunk bitmap: up to VMIR_MAX_CHUNKS bits, so possibly MiBs. */
static inline unsigned long *vmir_map_alloc(u32 nbits)
{
	return kvcalloc(BITS_TO_LONGS(nbits), sizeof(unsigned long),
			GFP_KERNEL);
}

/* vmir_main.c */
extern struct mutex vmir_lock;
extern unsigned int vmir_queue_depth;
extern int vmir_major;
struct vmir_device *vmir_dev_get(struct net *net, u32 id);
void vmir_dev_put(struct vmir_device *dev);
struct vmir_device *vmir_dev_create(const struct vmir_add_params *p);
void vmir_dev_publish(struct vmir_device *dev);
int vmir_dev_start(struct vmir_device *dev);
void vmir_dev_abort(struct vmir_device *dev);
int vmir_dev_stop(struct vmir_device *dev);
int vmir_dev_remove(struct vmir_device *dev);
void vmir_kick_net(struct net *net);
struct vmir_device *vmir_dev_get_next(struct net *net, int *pos);

/* vmir_blk.c */
int vmir_blk_init_disk(struct vmir_device *dev);
void vmir_blk_free_disk(struct vmir_device *dev);
void vmir_cmd_end(struct vmir_cmd *cmd, blk_status_t status);

/* vmir_genl.c */
int vmir_genl_init(void);
void vmir_genl_exit(void);
int vmir_genl_send_event(struct vmir_device *dev, u8 cmd, u32 chunk);
void vmir_dev_set_net(struct vmir_device *dev, struct net *net);
void vmir_helpers_forget_net(struct net *net);

#endif /* VMIR_DEV_H */
