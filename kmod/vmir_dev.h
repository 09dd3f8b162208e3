/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir: private structures shared by the module's parts.
 *
 *   vmir_main.c    module init/exit, device registry, device lifetime
 *   vmir_blk.c     blk-mq queue path (mirror I/O, parking, timeouts)
 *   vmir_chunk.c   per-chunk state: present/dirty/fetching/commit bitmaps,
 *                  admission of requests, wake-ups, event outbox
 *   vmir_genl.c    generic netlink family "vmir" and the helper registry
 *   vmir_compat.h  wrappers for kernel calls that changed after 6.1
 *
 * Locking order: dev->ctl_lock (mutex) > vmir_lock (mutex) >
 * dev->gate (percpu rwsem, writers only in the commit path) >
 * dev->lock (spinlock) ; vmir_helper_lock (spinlock) is a leaf.
 */
#ifndef VMIR_DEV_H
#define VMIR_DEV_H

#include <linux/bits.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/percpu-rwsem.h>
#include <linux/refcount.h>
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
#define VMIR_EVENT_RETRY	(HZ / 50)	/* undelivered event retry */

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
 * anything else happen under dev->lock.
 */
enum vmir_cmd_state {
	/* Being executed by queue_rq or by its work item on dev->wq; that
	 * context alone may complete it. Timeouts leave it alone.
	 */
	VMIR_CMD_RUNNING,
	/* On dev->parked, waiting for chunks (fetch or capture). Owned by
	 * dev->lock: whoever unlinks it under the lock owns it next (the
	 * waker queues it, a failure/timeout/remove path completes it).
	 */
	VMIR_CMD_PARKED,
	/* Unlinked by a waker (or punted by queue_rq), its work queued on
	 * dev->wq; owned by that work, which runs admission (it may park
	 * again).
	 */
	VMIR_CMD_QUEUED,
};

/* Why a request waits; both may be set over its life (stats count once). */
#define VMIR_WAIT_FETCH		BIT(0)
#define VMIR_WAIT_CAPTURE	BIT(1)

struct vmir_device;

/* Per-request PDU, sized by set->cmd_size. */
struct vmir_cmd {
	struct vmir_device *dev;
	struct list_head park_node;	/* in dev->parked, under dev->lock */
	struct work_struct work;	/* resume after a wake-up */
	enum vmir_cmd_state state;	/* dev->lock when PARKED */
	unsigned int waits;		/* VMIR_WAIT_*, dev->lock */
	u64 park_ns;			/* first park, 0 if never; dev->lock */
	u64 pos;			/* byte range [pos, end) and its */
	u64 end;			/* chunks [first, last], set by */
	u32 first;			/* admission */
	u32 last;
	bool write;			/* modifies the mirror */
	blk_status_t status;		/* for ->complete after a timeout */
};

/* Counters reported in VMIR_ATTR_STATS; all under dev->lock. */
struct vmir_stats {
	u64 misses;
	u64 miss_waits;
	u64 fetched_chunks;
	u64 fetched_bytes;
	u64 fetch_errors;
	u64 fetch_lat_sum_ns;
	u64 fetch_lat_count;
	u64 timeouts;
	u64 capture_waits;
	u64 events_sent;
	u64 event_retries;
	u64 prefetches;
};

/*
 * Chunk state. Bit i of each map is chunk i.
 *
 * present    Set under dev->lock (after smp_mb__before_atomic), read
 *            without it (test_bit_acquire): never cleared once the disk
 *            is LIVE, so a set bit stays true. In SETUP written by
 *            SET_STATE under ctl_lock (no I/O exists then).
 * dirty      Set with set_bit by writers holding dev->gate for read;
 *            cleared or replaced only with dev->gate held for write.
 * fetching   A MISS is outstanding: the helper owns the chunk's bytes in
 *            the mirror; requests touching it wait. dev->lock.
 * miss_pending  MISS events not delivered yet (subset of fetching).
 *            dev->lock.
 * During a commit (committing true; allocated by COMMIT_BEGIN, freed by
 * COMMIT_END; the pointers change only with dev->gate held for write and
 * dev->lock held):
 * commit     The dirty set at COMMIT_BEGIN; constant until COMMIT_END.
 * frozen     Commit chunks not captured yet: writers touching one wait.
 *            Cleared under dev->lock.
 * capture_req   CAPTURE_NEEDED generated for the chunk (dev->lock).
 * capture_pending  ... and not delivered yet (dev->lock).
 */
struct vmir_chunks {
	u32 nchunks;
	u32 chunk_shift;		/* log2(chunk size) */
	u64 size;			/* image bytes */
	unsigned long *present;
	unsigned long *dirty;
	unsigned long *fetching;
	unsigned long *miss_pending;
	u32 nr_fetching;		/* dev->lock */
	u32 nr_miss_pending;		/* dev->lock */
	bool committing;		/* gate(w) + dev->lock to change */
	unsigned long *commit;
	unsigned long *frozen;
	unsigned long *capture_req;
	unsigned long *capture_pending;
	u32 nr_commit;			/* dev->lock */
	u32 nr_capture_pending;		/* dev->lock */
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

	spinlock_t lock;		/* chunk state, parked, stats, names */
	struct vmir_chunks chunks;
	struct list_head parked;	/* struct vmir_cmd, dev->lock */
	bool dying;			/* no more parking; dev->lock */
	struct vmir_stats stats;	/* dev->lock */
	char image[VMIR_NAME_MAX];	/* dev->lock (commit --to renames) */
	char version[VMIR_NAME_MAX];	/* dev->lock */

	/* Held for read by requests that modify the mirror, for write by
	 * COMMIT_BEGIN/END: a commit starts with no write in progress.
	 */
	struct percpu_rw_semaphore gate;

	struct file *mirror;		/* constant while requests exist */
	struct workqueue_struct *wq;	/* resumed requests + events */
	struct delayed_work event_work;	/* sends MISS/CAPTURE_NEEDED */

	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
};

/* Outcome of admitting a request against the chunk state. */
enum vmir_admit {
	VMIR_ADMIT_RUN,		/* all chunks usable: caller runs it */
	VMIR_ADMIT_PARKED,	/* parked: dev->lock now owns it */
	VMIR_ADMIT_FAIL,	/* device dying: caller fails it */
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
void vmir_cmd_resume(struct work_struct *work);

/* vmir_chunk.c */
int vmir_chunks_init(struct vmir_chunks *c, u64 size, u32 chunk_size);
void vmir_chunks_free(struct vmir_chunks *c);
u32 vmir_chunk_bytes(const struct vmir_chunks *c, u32 chunk);
enum vmir_admit vmir_chunks_admit(struct vmir_device *dev,
				  struct vmir_cmd *cmd, u64 pos, u64 len,
				  bool write);
int vmir_chunk_ready(struct vmir_device *dev, u32 chunk, int status);
int vmir_chunk_prefetch(struct vmir_device *dev, u32 chunk);
int vmir_chunk_captured(struct vmir_device *dev, u32 chunk);
int vmir_commit_begin(struct vmir_device *dev, u32 *nr_commit);
int vmir_commit_end(struct vmir_device *dev, int status);
int vmir_chunks_set_segment(struct vmir_chunks *c, u32 start,
			    const u8 *present, const u8 *dirty, u32 len);
void vmir_chunks_get_segment(struct vmir_device *dev, u32 start, u32 len,
			     u8 *present, u8 *dirty, u8 *commit);
void vmir_chunks_fail_all(struct vmir_device *dev);
void vmir_chunks_resend(struct vmir_device *dev);
void vmir_event_work(struct work_struct *work);

/* vmir_genl.c */
int vmir_genl_init(void);
void vmir_genl_exit(void);
int vmir_genl_send_event(struct vmir_device *dev, u8 cmd, u32 chunk);
void vmir_dev_set_net(struct vmir_device *dev, struct net *net);
void vmir_helpers_forget_net(struct net *net);

#endif /* VMIR_DEV_H */
