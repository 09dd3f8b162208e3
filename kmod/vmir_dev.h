/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir: the device, the per-request PDU, and what the module's parts call
 * of each other.
 *
 *   vmir_main.c    module init/exit, device registry, device lifetime
 *   vmir_blk.c     blk-mq queue path: mirror I/O, timeouts, disk setup
 *   vmir_chunk.c   chunk state behind vmir_chunk.h: admission, parking,
 *                  wake-ups, commit, counters
 *   vmir_event.c   event outbox behind vmir_event.h: pending MISS and
 *                  CAPTURE_NEEDED, delivery, retry
 *   vmir_genl.c    generic netlink family "vmir", helper registry
 *   vmir_map.c     the durable map: copies of the maps in the mirror
 *   vmir_compat.h  wrappers for kernel calls that changed after 6.1
 *
 * Locking order, outer first:
 *
 *   dev->ctl_lock       mutex: control commands, dev->state
 *   dev->map_lock       mutex: writing the durable map (FLUSH, FUA, and
 *                       under ctl_lock COMMIT_END and STOP_DEVICE)
 *   chunk gate          percpu rwsem in the chunk state: read by requests
 *                       that modify the mirror, written by COMMIT_BEGIN/END
 *   chunk lock          spinlock in the chunk state: maps, parked requests
 *   outbox lock         spinlock in the event outbox: pending events
 *
 * vmir_helper_lock (vmir_genl.c), dev->name_lock and the registry's own
 * xarray lock are leaves: nothing is taken under them.
 *
 * Lookup: the registry is an xarray of devices by id. A lookup reads it
 * under RCU and takes a reference with refcount_inc_not_zero(); it takes
 * no mutex. The memory of a device is freed an RCU grace period after its
 * last reference (kfree_rcu), so a lookup that found the pointer may
 * still read dev->net and dev->refs; everything else of a device is
 * released before, and is used only under a reference.
 */
#ifndef VMIR_DEV_H
#define VMIR_DEV_H

#include <linux/bits.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>

#include <uapi/linux/vmir.h>

#define VMIR_SECTOR_SHIFT	9
#define VMIR_MAX_DEVICES	BIT(16)		/* ids and minors 0..65535 */
#define VMIR_MAX_HW_SECTORS	2048		/* 1 MiB, or a chunk if larger */
/* Discard/write-zeroes: 1 GiB per request bounds the chunk walk. */
#define VMIR_MAX_DISCARD_SECTORS BIT(21)

struct vmir_chunks;

/*
 * Device lifetime (loop's lo_state): one value, written under
 * dev->ctl_lock. Each state says what exists and who owns the device.
 */
enum vmir_lifetime {
	/* No disk yet. The id is reserved; ADD_DEVICE publishes the device
	 * to lookups at its end. Owned by the control commands, which
	 * serialize on ctl_lock; no request exists, so SET_STATE may
	 * rewrite the chunk maps.
	 */
	VMIR_LIFE_SETUP,
	/* Disk added: the block layer issues requests, the chunk state
	 * admits them. Control commands still serialize on ctl_lock.
	 */
	VMIR_LIFE_LIVE,
	/* STOP_DEVICE ran: parked requests failed, the disk is deleted, no
	 * request exists and no event is sent. The chunk state is final;
	 * GET_STATE reads it until REMOVE_DEVICE.
	 */
	VMIR_LIFE_STOPPED,
	/* Out of the registry: lookups no longer find it, its id stays
	 * reserved until its disk is gone. Owned by the remover, which fails
	 * parked requests, deletes the disk, releases the rest and drops the
	 * registry's reference; holders of other references may still read
	 * the device until they put it.
	 */
	VMIR_LIFE_REMOVING,
};

/*
 * Where a request is, and who owns it there. Changes between PARKED and
 * anything else happen under the chunk lock.
 */
enum vmir_cmd_state {
	/* Being executed by queue_rq or by the device's dispatch work on
	 * dev->wq; that context alone may complete it. Timeouts leave it
	 * alone.
	 */
	VMIR_CMD_RUNNING,
	/* Parked in the chunk state, waiting for chunks (fetch or capture).
	 * Owned by the chunk lock: whoever unparks it under the lock owns it
	 * next (a waker queues it, a failure, timeout or removal completes
	 * it).
	 */
	VMIR_CMD_PARKED,
	/* Unparked by a waker (or handed off by queue_rq), on the device's
	 * dispatch list; owned by the dispatch work on dev->wq, which runs
	 * admission again (it may park again).
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
	struct list_head queue_node;	/* dispatch list, dev->queue_lock */
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
	refcount_t refs;		/* registry + lookups */
	struct rcu_head rcu;		/* frees the memory after lookups */

	struct mutex ctl_lock;		/* serializes control commands */
	enum vmir_lifetime state;	/* ctl_lock; READ_ONCE to report */

	/* Owner netns, no reference. Written under vmir_helper_lock,
	 * read under it or with READ_ONCE (lookups).
	 */
	struct net *net;
	u64 add_flags;			/* VMIR_ADD_F_*, constant */
	u32 timeout_ms;			/* constant */

	/* Chunk maps, parked requests, commit, events: own locks. */
	struct vmir_chunks *chunks;	/* constant */

	spinlock_t name_lock;
	char image[VMIR_NAME_MAX];	/* name_lock (commit --to renames) */
	u32 version;			/* name_lock */

	struct file *mirror;		/* constant while requests exist */
	/*
	 * Requests served off the submitter's context (handed off by
	 * queue_rq, or woken after a wait) go on a list that one work item
	 * drains, on an unbound workqueue: loop's design, so that they run
	 * on another CPU than the submitter, in batches, without a work item
	 * and a wake-up per request. Events are delivered on it too.
	 */
	struct workqueue_struct *wq;	/* WQ_UNBOUND | WQ_MEM_RECLAIM */
	spinlock_t queue_lock;		/* nests inside the chunk lock */
	struct list_head queue;		/* QUEUED requests, queue_lock */
	struct work_struct queue_work;	/* drains queue */
	/* where requests were served from the mirror without waiting */
	struct vmir_served __percpu *served;

	/* The durable map (vmir_map.c); map_offset 0: none. */
	struct mutex map_lock;		/* the fields below */
	u64 map_offset;			/* constant */
	u64 map_slot;			/* constant: bytes per copy */
	void *map_buf;			/* one copy being written */
	u64 map_gen;			/* generation of the newest copy */
	u32 map_changes;		/* chunk changes it holds; READ_ONCE */
	u64 map_commits;		/* copies written; READ_ONCE */

	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
};

/*
 * Requests served from the mirror that never waited for a chunk (hits),
 * by where: in queue_rq from the page cache without waiting (nowait), or
 * on the dispatch work (worker). Per CPU: counted on the hot path without
 * a shared cache line. (VMIR_STAT_HITS_INLINE, blocking service in the
 * submitter's context, is no longer done and reported as 0.)
 */
struct vmir_served {
	u64 nowait_hits;
	u64 worker_hits;
};

/* ADD_DEVICE parameters, validated by vmir_genl.c. */
struct vmir_add_params {
	const char *image;
	u32 version;
	u64 size;
	u32 chunk_size;
	u32 timeout_ms;
	u64 flags;
	struct file *mirror;		/* reference moves to the device */
	struct net *net;
	u64 map_offset;			/* 0: no durable map */
	u64 map_gen;
};

/* A chunk bitmap: up to VMIR_MAX_CHUNKS bits, so possibly MiBs. */
static inline unsigned long *vmir_map_alloc(u32 nbits)
{
	return kvcalloc(BITS_TO_LONGS(nbits), sizeof(unsigned long),
			GFP_KERNEL);
}

/* vmir_main.c */
extern unsigned int vmir_queue_depth;
extern int vmir_major;
struct vmir_device *vmir_dev_get(struct net *net, u32 id);
struct vmir_device *vmir_dev_get_next(struct net *net, unsigned long *pos);
void vmir_dev_put(struct vmir_device *dev);
struct vmir_device *vmir_dev_create(const struct vmir_add_params *p);
void vmir_dev_publish(struct vmir_device *dev);
int vmir_dev_start(struct vmir_device *dev);
int vmir_dev_stop(struct vmir_device *dev);
int vmir_dev_remove(struct vmir_device *dev);
void vmir_kick_net(struct net *net);

/* vmir_blk.c */
int vmir_blk_init_disk(struct vmir_device *dev);
void vmir_blk_free_disk(struct vmir_device *dev);
void vmir_cmd_end(struct vmir_cmd *cmd, blk_status_t status);
void vmir_cmd_queue(struct vmir_cmd *cmd);
void vmir_dispatch_work(struct work_struct *work);
void vmir_served_sum(struct vmir_device *dev, struct vmir_served *sum);

/* vmir_map.c */
int vmir_map_init(struct vmir_device *dev, u64 offset, u64 generation);
void vmir_map_free(struct vmir_device *dev);
bool vmir_map_stale(struct vmir_device *dev);
int vmir_map_commit(struct vmir_device *dev, bool force);

/* vmir_genl.c */
int vmir_genl_init(void);
void vmir_genl_exit(void);
int vmir_genl_send_event(struct vmir_device *dev, u8 cmd, const u32 *chunks,
			 u32 n);
void vmir_dev_set_net(struct vmir_device *dev, struct net *net);
void vmir_helpers_forget_net(struct net *net);

#endif /* VMIR_DEV_H */
