// SPDX-License-Identifier: GPL-2.0
/*
 * vmir: per-chunk state and the rules that decide when a request may touch
 * the mirror (interface in vmir_chunk.h).
 *
 * A request is admitted when every chunk it touches is usable: present
 * (for a write that covers a whole missing chunk, nothing needs fetching:
 * the write itself fills it) and, for a request that modifies the mirror
 * during a commit, not frozen. Otherwise it is parked and the missing
 * chunks are asked for with one MISS each (a chunk already being fetched
 * is not asked for again), frozen chunks with one CAPTURE_NEEDED each.
 * Answers wake the parked requests that touch the chunk; they re-run
 * admission from their work item.
 *
 * Hot path: a request whose chunks are all present takes no lock. Present
 * bits are set under c->lock once the data is in the mirror and never
 * cleared on a live device, so an acquire read of a set bit is enough. A
 * write marks its chunks dirty with atomic bitops under the read side of
 * c->gate, and counts in c->nr_dirty the bits it is the first to set.
 *
 * Events are not sent from here: they are posted to the device's outbox
 * (vmir_event.c) under c->lock and delivered from its work item.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bitmap.h>
#include <linux/bitops.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/percpu-rwsem.h>
#include <linux/slab.h>

#include "vmir_chunk.h"
#include "vmir_dev.h"
#include "vmir_event.h"

/*
 * Bit i of each map is chunk i. Who may change what:
 *
 * present     Set under lock (after smp_mb__before_atomic), read without
 *             it (test_bit_acquire): never cleared once the disk is LIVE,
 *             so a set bit stays true. In SETUP also rewritten by
 *             SET_STATE, under ctl_lock and lock (no request exists).
 * dirty       Set with atomic bitops by writers holding gate for read;
 *             cleared or replaced only with gate held for write, or by
 *             SET_STATE in SETUP. The pointer changes under gate(w) + lock.
 * fetching    A MISS is outstanding: the helper owns the chunk's bytes in
 *             the mirror; requests touching it wait. lock.
 *
 * During a commit (committing set; the maps are allocated by COMMIT_BEGIN
 * and freed by COMMIT_END; committing and the pointers change only with
 * gate held for write and lock held):
 *
 * commit      The dirty set at COMMIT_BEGIN; constant until COMMIT_END.
 * frozen      Commit chunks not captured yet: writers touching one wait.
 *             Cleared under lock.
 * capture_req CAPTURE_NEEDED posted for the chunk. lock.
 */
struct vmir_chunks {
	struct vmir_device *dev;	/* owner: wq, disk, ctl_lock */
	struct vmir_events *events;	/* MISS / CAPTURE_NEEDED outbox */
	u64 size;			/* image bytes */
	u32 nchunks;
	u32 chunk_shift;		/* log2(chunk size) */

	/* Read by requests that modify the mirror, from admission to
	 * vmir_chunks_write_done(); written by COMMIT_BEGIN/END, so that a
	 * commit starts and ends with no write in progress.
	 */
	struct percpu_rw_semaphore gate;
	unsigned long *present;
	unsigned long *dirty;
	atomic_t nr_dirty;		/* bits set in dirty */
	/* Bumped after a present or dirty bit is set, or the dirty set
	 * shrinks: the durable map (vmir_map.c) compares it with the value
	 * its last copy was taken at.
	 */
	atomic_t changes;

	spinlock_t lock;
	unsigned long *fetching;	/* lock */
	u32 nr_present;			/* lock */
	u32 nr_fetching;		/* lock */
	struct list_head parked;	/* struct vmir_cmd, lock */
	u32 nr_parked;			/* lock */
	bool dying;			/* lock: nothing parks any more */
	struct vmir_stats stats;	/* lock; the outbox counts events */

	bool committing;		/* gate(w) + lock to change */
	unsigned long *commit;
	unsigned long *frozen;
	unsigned long *capture_req;
	u32 nr_commit;			/* lock */
	u32 nr_frozen;			/* lock */
	u32 nr_capture_req;		/* lock */

	/*
	 * First-access order, lock-free: the request that sets a chunk's
	 * bit in accessed takes the next slot (nr_access) and stores the
	 * chunk + 1 there with release; 0 is a slot taken but not filled
	 * yet. Slots past access_cap are only counted.
	 */
	unsigned long *accessed;
	u32 *access;
	u32 access_cap;
	atomic_t nr_access;
};

struct vmir_chunks *vmir_chunks_create(struct vmir_device *dev, u64 size,
				       u32 chunk_size)
{
	struct vmir_chunks *c;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		goto out;
	c->dev = dev;
	c->size = size;
	c->chunk_shift = ilog2(chunk_size);
	c->nchunks = DIV_ROUND_UP_ULL(size, chunk_size);
	atomic_set(&c->nr_dirty, 0);
	atomic_set(&c->changes, 0);
	spin_lock_init(&c->lock);
	INIT_LIST_HEAD(&c->parked);

	if (percpu_init_rwsem(&c->gate))
		goto out_free_c;
	c->present = vmir_map_alloc(c->nchunks);
	if (!c->present)
		goto out_free_gate;
	c->dirty = vmir_map_alloc(c->nchunks);
	if (!c->dirty)
		goto out_free_present;
	c->fetching = vmir_map_alloc(c->nchunks);
	if (!c->fetching)
		goto out_free_dirty;
	c->accessed = vmir_map_alloc(c->nchunks);
	if (!c->accessed)
		goto out_free_fetching;
	c->access_cap = min(c->nchunks, VMIR_ACCESS_MAX);
	c->access = kvcalloc(c->access_cap, sizeof(*c->access), GFP_KERNEL);
	if (!c->access)
		goto out_free_accessed;
	atomic_set(&c->nr_access, 0);
	c->events = vmir_events_create(dev, c->nchunks);
	if (!c->events)
		goto out_free_access;
	return c;

out_free_access:
	kvfree(c->access);
out_free_accessed:
	kvfree(c->accessed);
out_free_fetching:
	kvfree(c->fetching);
out_free_dirty:
	kvfree(c->dirty);
out_free_present:
	kvfree(c->present);
out_free_gate:
	percpu_free_rwsem(&c->gate);
out_free_c:
	kfree(c);
out:
	return NULL;
}

/* The counters must say what the maps say; checked once, at the end. */
static void vmir_chunks_check(struct vmir_chunks *c)
{
	u32 n = c->nchunks;

	WARN_ON_ONCE(c->nr_present != bitmap_weight(c->present, n));
	WARN_ON_ONCE(atomic_read(&c->nr_dirty) != bitmap_weight(c->dirty, n));
	WARN_ON_ONCE(c->nr_fetching != bitmap_weight(c->fetching, n));
	WARN_ON_ONCE(c->nr_parked || !list_empty(&c->parked));
	if (!c->committing)
		return;
	WARN_ON_ONCE(c->nr_commit != bitmap_weight(c->commit, n));
	WARN_ON_ONCE(c->nr_frozen != bitmap_weight(c->frozen, n));
	WARN_ON_ONCE(c->nr_capture_req != bitmap_weight(c->capture_req, n));
}

/* No request exists any more: the disk is gone (or was never added). */
void vmir_chunks_destroy(struct vmir_chunks *c)
{
	vmir_chunks_check(c);
	vmir_events_destroy(c->events);
	kvfree(c->access);
	kvfree(c->accessed);
	kvfree(c->capture_req);
	kvfree(c->frozen);
	kvfree(c->commit);
	kvfree(c->fetching);
	kvfree(c->dirty);
	kvfree(c->present);
	percpu_free_rwsem(&c->gate);
	kfree(c);
}

u64 vmir_chunks_size(const struct vmir_chunks *c)
{
	return c->size;
}

u32 vmir_chunks_chunk_size(const struct vmir_chunks *c)
{
	return 1U << c->chunk_shift;
}

u32 vmir_chunks_count(const struct vmir_chunks *c)
{
	return c->nchunks;
}

/* Image bytes held by @chunk: chunk_size, less for the last chunk. */
static u32 vmir_chunk_bytes(const struct vmir_chunks *c, u32 chunk)
{
	u64 start = (u64)chunk << c->chunk_shift;
	u64 end = min_t(u64, start + (1ULL << c->chunk_shift), c->size);

	return end - start;
}

/* Does the byte range [pos, end) cover every image byte of @chunk? */
static bool vmir_chunk_covered(const struct vmir_chunks *c, u32 chunk,
			       u64 pos, u64 end)
{
	u64 start = (u64)chunk << c->chunk_shift;

	return pos <= start && end >= start + vmir_chunk_bytes(c, chunk);
}

static bool vmir_cmd_touches(const struct vmir_cmd *cmd, u32 chunk)
{
	return chunk >= cmd->first && chunk <= cmd->last;
}

/* Does @cmd need the data of @chunk (not just overwrite all of it)? */
static bool vmir_cmd_needs(const struct vmir_chunks *c,
			   const struct vmir_cmd *cmd, u32 chunk)
{
	if (!vmir_cmd_touches(cmd, chunk))
		return false;
	return !cmd->write || !vmir_chunk_covered(c, chunk, cmd->pos,
						  cmd->end);
}

static void vmir_park_locked(struct vmir_chunks *c, struct vmir_cmd *cmd)
{
	lockdep_assert_held(&c->lock);
	cmd->state = VMIR_CMD_PARKED;
	list_add_tail(&cmd->park_node, &c->parked);
	c->nr_parked++;
}

/* Take @cmd off the parked list; the caller sets its next state. */
static void vmir_unpark_locked(struct vmir_chunks *c, struct vmir_cmd *cmd)
{
	lockdep_assert_held(&c->lock);
	list_del_init(&cmd->park_node);
	c->nr_parked--;
}

/*
 * Hand the parked requests touching @chunk (all of them for U32_MAX) that
 * waited for @why to their work items. Returns the earliest park time of
 * the woken requests, U64_MAX if none.
 */
static u64 vmir_wake_locked(struct vmir_chunks *c, u32 chunk,
			    unsigned int why)
{
	struct vmir_cmd *cmd, *tmp;
	u64 oldest = U64_MAX;

	lockdep_assert_held(&c->lock);
	list_for_each_entry_safe(cmd, tmp, &c->parked, park_node) {
		if (chunk != U32_MAX && !vmir_cmd_touches(cmd, chunk))
			continue;
		if (!(cmd->waits & why))
			continue;
		if (WARN_ON_ONCE(cmd->state != VMIR_CMD_PARKED))
			continue;
		oldest = min(oldest, cmd->park_ns);
		vmir_unpark_locked(c, cmd);
		cmd->state = VMIR_CMD_QUEUED;
		vmir_cmd_queue(cmd);
	}
	return oldest;
}

/* The mirror holds @chunk's data now: publish it to lock-free readers. */
static void vmir_set_present_locked(struct vmir_chunks *c, u32 chunk)
{
	lockdep_assert_held(&c->lock);
	if (test_bit(chunk, c->present))
		return;
	/* Publish after the fill; readers acquire. */
	smp_mb__before_atomic();
	set_bit(chunk, c->present);
	c->nr_present++;
	atomic_inc(&c->changes);
}

/* A writer holding the gate for read marks its chunks dirty. */
static void vmir_mark_written(struct vmir_chunks *c, u32 first, u32 last)
{
	u32 i;

	for (i = first; i <= last; i++)
		if (!test_bit(i, c->dirty) && !test_and_set_bit(i, c->dirty)) {
			atomic_inc(&c->nr_dirty);
			atomic_inc(&c->changes);
		}
}

/* Slow path of vmir_chunks_admit(), under c->lock. */
static enum vmir_admit vmir_admit_locked(struct vmir_chunks *c,
					 struct vmir_cmd *cmd)
{
	unsigned int why = 0;
	u32 i;

	lockdep_assert_held(&c->lock);
	if (c->dying)
		return VMIR_ADMIT_FAIL;

	for (i = cmd->first; i <= cmd->last; i++) {
		if (!test_bit(i, c->present)) {
			/* A write over the whole of a missing chunk needs no
			 * data, unless the helper owns the chunk right now.
			 */
			if (cmd->write && !test_bit(i, c->fetching) &&
			    vmir_chunk_covered(c, i, cmd->pos, cmd->end))
				continue;
			why |= VMIR_WAIT_FETCH;
			if (test_bit(i, c->fetching))
				continue;
			__set_bit(i, c->fetching);
			c->nr_fetching++;
			c->stats.misses++;
			vmir_event_post(c->events, VMIR_EVENT_MISS, i);
		} else if (cmd->write && c->committing &&
			   test_bit(i, c->frozen)) {
			why |= VMIR_WAIT_CAPTURE;
			if (test_bit(i, c->capture_req))
				continue;
			__set_bit(i, c->capture_req);
			c->nr_capture_req++;
			vmir_event_post(c->events, VMIR_EVENT_CAPTURE, i);
		}
	}

	if (why) {
		if ((why & VMIR_WAIT_FETCH) && !(cmd->waits & VMIR_WAIT_FETCH))
			c->stats.miss_waits++;
		if ((why & VMIR_WAIT_CAPTURE) &&
		    !(cmd->waits & VMIR_WAIT_CAPTURE))
			c->stats.capture_waits++;
		cmd->waits |= why;
		if (!cmd->park_ns)
			cmd->park_ns = ktime_get_ns();
		vmir_park_locked(c, cmd);
		return VMIR_ADMIT_PARKED;
	}

	if (cmd->write) {
		for (i = cmd->first; i <= cmd->last; i++)
			vmir_set_present_locked(c, i);
		vmir_mark_written(c, cmd->first, cmd->last);
	}
	cmd->state = VMIR_CMD_RUNNING;
	return VMIR_ADMIT_RUN;
}

/**
 * vmir_chunks_note_access - record the chunks of a request in access order
 * @c: the device's chunk state
 * @pos: first byte
 * @len: bytes, > 0
 *
 * Called once per request, before it is served or parked. Lock-free: a
 * chunk seen before costs one bit test.
 */
void vmir_chunks_note_access(struct vmir_chunks *c, u64 pos, u64 len)
{
	u32 i, first = pos >> c->chunk_shift;
	u32 last = (pos + len - 1) >> c->chunk_shift;
	u32 slot;

	if (WARN_ON_ONCE(!len || last >= c->nchunks))
		return;
	for (i = first; i <= last; i++) {
		if (test_bit(i, c->accessed) || test_and_set_bit(i, c->accessed))
			continue;
		slot = atomic_inc_return(&c->nr_access) - 1;
		if (slot < c->access_cap)
			smp_store_release(&c->access[slot], i + 1);
	}
}

/**
 * vmir_chunks_access - read the first-access order
 * @c: the device's chunk state
 * @start: rank of the first chunk wanted
 * @out: receives up to @max chunk indexes, of ranks @start on
 * @max: room in @out
 * @nr: receives the number of chunks recorded
 * @lost: receives the number of first accesses past the record's room
 *
 * Returns how many chunks were copied: fewer than asked when a slot is
 * taken but not filled yet (the caller asks again from there), or
 * -ERANGE when @start is past the recorded chunks.
 */
int vmir_chunks_access(struct vmir_chunks *c, u32 start, u32 *out, u32 max,
		       u32 *nr, u32 *lost)
{
	u32 taken = atomic_read(&c->nr_access);
	u32 n = min(taken, c->access_cap);
	u32 i, v, got = 0;

	*nr = n;
	*lost = taken - n;
	if (start > n)
		return -ERANGE;
	for (i = start; i < n && got < max; i++) {
		v = smp_load_acquire(&c->access[i]);
		if (!v)
			break;
		out[got++] = v - 1;
	}
	return got;
}

/**
 * vmir_chunks_all_present - does the mirror hold every chunk of a range?
 * @c: the device's chunk state
 * @pos: first byte
 * @len: bytes, > 0
 *
 * Lock-free (present bits are never cleared on a live device), for a
 * read that is served without admission when the answer is yes.
 */
bool vmir_chunks_all_present(struct vmir_chunks *c, u64 pos, u64 len)
{
	u32 i, first = pos >> c->chunk_shift;
	u32 last = (pos + len - 1) >> c->chunk_shift;

	if (WARN_ON_ONCE(!len || last >= c->nchunks))
		return false;
	for (i = first; i <= last; i++)
		if (!test_bit_acquire(i, c->present))
			return false;
	return true;
}

/**
 * vmir_chunks_admit - may @cmd touch the mirror now?
 * @c: the device's chunk state
 * @cmd: the request, owned by the caller (RUNNING or QUEUED)
 * @pos: first byte
 * @len: bytes
 * @write: the request modifies the mirror (write, discard, write zeroes)
 *
 * Returns VMIR_ADMIT_RUN with the chunks made usable (a write has marked
 * them present and dirty, and holds the commit gate until it calls
 * vmir_chunks_write_done()), VMIR_ADMIT_PARKED when the request now
 * belongs to the chunk state (the caller must not touch it or the device
 * any more), or VMIR_ADMIT_FAIL when the device is going away.
 */
enum vmir_admit vmir_chunks_admit(struct vmir_chunks *c,
				  struct vmir_cmd *cmd, u64 pos, u64 len,
				  bool write)
{
	enum vmir_admit ret;
	u32 i;

	cmd->pos = pos;
	cmd->end = pos + len;
	cmd->write = write;
	cmd->first = pos >> c->chunk_shift;
	cmd->last = (pos + len - 1) >> c->chunk_shift;
	if (WARN_ON_ONCE(!len || cmd->last >= c->nchunks))
		return VMIR_ADMIT_FAIL;
	if (write)
		percpu_down_read(&c->gate);

	/*
	 * Fast path without c->lock: present bits are never cleared, and a
	 * writer holding the gate sees committing and the dirty map fixed.
	 */
	if (!write || !READ_ONCE(c->committing)) {
		for (i = cmd->first; i <= cmd->last; i++)
			if (!test_bit_acquire(i, c->present))
				break;
		if (i > cmd->last) {
			if (write)
				vmir_mark_written(c, cmd->first, cmd->last);
			return VMIR_ADMIT_RUN;
		}
	}

	spin_lock(&c->lock);
	ret = vmir_admit_locked(c, cmd);
	/*
	 * A parked request may complete as soon as the lock drops, and with
	 * the last request the device may go: release the gate before.
	 */
	if (write && ret != VMIR_ADMIT_RUN)
		percpu_up_read(&c->gate);
	spin_unlock(&c->lock);
	return ret;
}

/* A write admitted with VMIR_ADMIT_RUN has modified the mirror. */
void vmir_chunks_write_done(struct vmir_chunks *c)
{
	percpu_up_read(&c->gate);
}

/**
 * vmir_chunks_expire - the timeout handler claims @cmd if it is parked
 * @c: the device's chunk state
 * @cmd: a request that timed out
 *
 * Returns true when @cmd was parked: it is the caller's now, to fail.
 * Requests in any other state run, and time out never.
 */
bool vmir_chunks_expire(struct vmir_chunks *c, struct vmir_cmd *cmd)
{
	spin_lock(&c->lock);
	if (cmd->state != VMIR_CMD_PARKED) {
		spin_unlock(&c->lock);
		return false;
	}
	vmir_unpark_locked(c, cmd);
	cmd->state = VMIR_CMD_RUNNING;
	c->stats.timeouts++;
	spin_unlock(&c->lock);
	return true;
}

/**
 * vmir_chunk_prefetch - PREFETCH: the helper claims a missing chunk
 * @c: the device's chunk state
 * @chunk: chunk index, < nchunks
 *
 * The chunk becomes fetching without a MISS event: requests touching it
 * wait for the helper's CHUNK_READY like after a miss, and a helper that
 * registers later gets a MISS for it. Returns 0, -EEXIST if present,
 * -EALREADY if already fetching, -ENODEV if the device is stopping.
 */
int vmir_chunk_prefetch(struct vmir_chunks *c, u32 chunk)
{
	int ret = 0;

	spin_lock(&c->lock);
	if (c->dying) {
		ret = -ENODEV;
	} else if (test_bit(chunk, c->present)) {
		ret = -EEXIST;
	} else if (test_bit(chunk, c->fetching)) {
		ret = -EALREADY;
	} else {
		__set_bit(chunk, c->fetching);
		c->nr_fetching++;
		c->stats.prefetches++;
	}
	spin_unlock(&c->lock);
	return ret;
}

/**
 * vmir_chunk_ready - the helper answered the MISS for @chunk
 * @c: the device's chunk state
 * @chunk: chunk index, < nchunks
 * @status: 0 (the mirror now holds the chunk) or -errno
 *
 * Returns 0, or -ENOENT when no MISS is outstanding for @chunk.
 */
int vmir_chunk_ready(struct vmir_chunks *c, u32 chunk, int status)
{
	struct vmir_cmd *cmd, *tmp;
	LIST_HEAD(failed);
	u64 oldest;

	spin_lock(&c->lock);
	if (!test_bit(chunk, c->fetching)) {
		spin_unlock(&c->lock);
		return -ENOENT;
	}
	__clear_bit(chunk, c->fetching);
	c->nr_fetching--;
	vmir_event_cancel(c->events, VMIR_EVENT_MISS, chunk);

	if (!status) {
		/* The helper's writes to the mirror precede this answer. */
		vmir_set_present_locked(c, chunk);
		c->stats.fetched_chunks++;
		c->stats.fetched_bytes += vmir_chunk_bytes(c, chunk);
		oldest = vmir_wake_locked(c, chunk, VMIR_WAIT_FETCH);
		if (oldest != U64_MAX) {
			c->stats.fetch_lat_sum_ns += ktime_get_ns() - oldest;
			c->stats.fetch_lat_count++;
		}
		spin_unlock(&c->lock);
		return 0;
	}

	c->stats.fetch_errors++;
	list_for_each_entry_safe(cmd, tmp, &c->parked, park_node) {
		if (!vmir_cmd_touches(cmd, chunk))
			continue;
		vmir_unpark_locked(c, cmd);
		if (!vmir_cmd_needs(c, cmd, chunk)) {
			/* It overwrites the chunk: let it retry admission. */
			cmd->state = VMIR_CMD_QUEUED;
			vmir_cmd_queue(cmd);
			continue;
		}
		list_add_tail(&cmd->park_node, &failed);
		cmd->state = VMIR_CMD_RUNNING;
	}
	spin_unlock(&c->lock);

	list_for_each_entry_safe(cmd, tmp, &failed, park_node) {
		list_del_init(&cmd->park_node);
		dev_err_ratelimited(disk_to_dev(c->dev->disk),
				    "%s at byte %llu failed: fetching chunk %u failed with error %d\n",
				    cmd->write ? "write" : "read", cmd->pos,
				    chunk, status);
		vmir_cmd_end(cmd, BLK_STS_IOERR);
	}
	return 0;
}

/**
 * vmir_chunk_captured - userspace copied commit chunk @chunk out
 * @c: the device's chunk state
 * @chunk: chunk index, < nchunks
 *
 * Returns 0 (also when it was reported before), -ENOENT when no commit is
 * active or @chunk is not in the commit set.
 */
int vmir_chunk_captured(struct vmir_chunks *c, u32 chunk)
{
	spin_lock(&c->lock);
	if (!c->committing || !test_bit(chunk, c->commit)) {
		spin_unlock(&c->lock);
		return -ENOENT;
	}
	if (test_bit(chunk, c->frozen)) {
		__clear_bit(chunk, c->frozen);
		c->nr_frozen--;
		if (__test_and_clear_bit(chunk, c->capture_req)) {
			c->nr_capture_req--;
			vmir_event_cancel(c->events, VMIR_EVENT_CAPTURE,
					  chunk);
		}
		vmir_wake_locked(c, chunk, VMIR_WAIT_CAPTURE);
	}
	spin_unlock(&c->lock);
	return 0;
}

/**
 * vmir_chunks_commit_begin - freeze the dirty set as the commit set
 * @c: the device's chunk state; the caller holds dev->ctl_lock
 * @nr_commit: set to the number of chunks in the commit set
 *
 * Waits for the writes in progress (the gate), then moves the dirty map
 * into the commit set in one step. Returns 0, -EBUSY when a commit is
 * active, -ENOMEM.
 */
int vmir_chunks_commit_begin(struct vmir_chunks *c, u32 *nr_commit)
{
	unsigned long *dirty, *frozen, *req;
	int ret = -ENOMEM;

	lockdep_assert_held(&c->dev->ctl_lock);
	/* Only COMMIT_BEGIN sets it, under ctl_lock, which we hold. */
	if (READ_ONCE(c->committing))
		return -EBUSY;
	dirty = vmir_map_alloc(c->nchunks);
	if (!dirty)
		goto out;
	frozen = vmir_map_alloc(c->nchunks);
	if (!frozen)
		goto out_free_dirty;
	req = vmir_map_alloc(c->nchunks);
	if (!req)
		goto out_free_frozen;

	percpu_down_write(&c->gate);
	spin_lock(&c->lock);
	c->commit = c->dirty;
	c->dirty = dirty;
	bitmap_copy(frozen, c->commit, c->nchunks);
	c->frozen = frozen;
	c->capture_req = req;
	/* No writer holds the gate: the count is that of the commit map. */
	c->nr_commit = atomic_xchg(&c->nr_dirty, 0);
	c->nr_frozen = c->nr_commit;
	c->nr_capture_req = 0;
	WRITE_ONCE(c->committing, true);
	*nr_commit = c->nr_commit;
	spin_unlock(&c->lock);
	percpu_up_write(&c->gate);
	return 0;

out_free_frozen:
	kvfree(frozen);
out_free_dirty:
	kvfree(dirty);
out:
	return ret;
}

/**
 * vmir_chunks_commit_end - finish the active commit
 * @c: the device's chunk state; the caller holds dev->ctl_lock
 * @status: 0 when the commit set was published, else -errno: the commit
 *	set becomes dirty again
 *
 * Returns 0, or -ENOENT when no commit is active.
 */
int vmir_chunks_commit_end(struct vmir_chunks *c, int status)
{
	unsigned long *commit, *frozen, *req;

	lockdep_assert_held(&c->dev->ctl_lock);
	percpu_down_write(&c->gate);
	spin_lock(&c->lock);
	if (!c->committing) {
		spin_unlock(&c->lock);
		percpu_up_write(&c->gate);
		return -ENOENT;
	}
	/* No writer holds the gate: the dirty map is ours to merge into. */
	if (status) {
		bitmap_or(c->dirty, c->dirty, c->commit, c->nchunks);
		atomic_set(&c->nr_dirty, bitmap_weight(c->dirty, c->nchunks));
	}
	commit = c->commit;
	frozen = c->frozen;
	req = c->capture_req;
	c->commit = NULL;
	c->frozen = NULL;
	c->capture_req = NULL;
	c->nr_commit = 0;
	c->nr_frozen = 0;
	c->nr_capture_req = 0;
	WRITE_ONCE(c->committing, false);
	if (!status)
		atomic_inc(&c->changes);	/* the commit set is clean now */
	vmir_events_cancel_all(c->events, VMIR_EVENT_CAPTURE);
	vmir_wake_locked(c, U32_MAX, VMIR_WAIT_CAPTURE);
	spin_unlock(&c->lock);
	percpu_up_write(&c->gate);

	kvfree(req);
	kvfree(frozen);
	kvfree(commit);
	return 0;
}

/*
 * Bitmap bytes on the wire: bit b of byte j is chunk start + 8 * j + b.
 * @start is a multiple of 8, so a byte never straddles two longs. Dirty
 * bits may be set meanwhile by lock-free writers: read the word once.
 */
static u8 vmir_map_byte(const unsigned long *map, u32 nbits, u32 bit)
{
	unsigned long word;
	u8 b;

	if (bit >= nbits)
		return 0;
	word = READ_ONCE(map[BIT_WORD(bit)]);
	b = word >> (bit % BITS_PER_LONG);
	if (nbits - bit < 8)
		b &= (1U << (nbits - bit)) - 1;
	return b;
}

static void vmir_map_set_byte(unsigned long *map, u32 bit, u8 b)
{
	unsigned int shift = bit % BITS_PER_LONG;
	unsigned long *word = &map[BIT_WORD(bit)];

	*word = (*word & ~(0xffUL << shift)) | ((unsigned long)b << shift);
}

/**
 * vmir_chunks_set_segment - replace present/dirty bits of a range
 * @c: chunk state of a device in SETUP (no disk: no request exists);
 *	the caller holds dev->ctl_lock
 * @start: first chunk, a multiple of 8, < nchunks
 * @present: @len bytes
 * @dirty: @len bytes or NULL (all clean); a subset of @present
 * @len: bytes, start + 8 * len <= round_up(nchunks, 8)
 *
 * The caller validated the segment (vmir_genl.c).
 */
int vmir_chunks_set_segment(struct vmir_chunks *c, u32 start,
			    const u8 *present, const u8 *dirty, u32 len)
{
	u32 j, bit;
	u8 old, new;

	lockdep_assert_held(&c->dev->ctl_lock);
	if (WARN_ON_ONCE(c->dev->state != VMIR_LIFE_SETUP ||
			 start % 8 || start >= c->nchunks ||
			 len > DIV_ROUND_UP(c->nchunks - start, 8)))
		return -EINVAL;
	/* The lock keeps the counters exact for reports meanwhile. */
	spin_lock(&c->lock);
	for (j = 0; j < len; j++) {
		bit = start + 8 * j;
		old = vmir_map_byte(c->present, c->nchunks, bit);
		vmir_map_set_byte(c->present, bit, present[j]);
		c->nr_present -= hweight8(old);
		c->nr_present += hweight8(present[j]);

		new = dirty ? dirty[j] : 0;
		old = vmir_map_byte(c->dirty, c->nchunks, bit);
		vmir_map_set_byte(c->dirty, bit, new);
		atomic_sub(hweight8(old), &c->nr_dirty);
		atomic_add(hweight8(new), &c->nr_dirty);
	}
	atomic_inc(&c->changes);
	spin_unlock(&c->lock);
	return 0;
}

/* The value vmir_chunks_map_copy() returns while the maps stay as they are. */
u32 vmir_chunks_changes(struct vmir_chunks *c)
{
	return atomic_read(&c->changes);
}

/**
 * vmir_chunks_map_copy - the maps as the durable map stores them
 * @c: the device's chunk state
 * @present: VMIR_MAP_BYTES(nchunks) bytes
 * @dirty: as many; chunks of an active commit count as dirty
 *
 * Returns the change count read before the copy: a change made during the
 * copy may be missing from it, and then the count differs next time.
 */
u32 vmir_chunks_map_copy(struct vmir_chunks *c, u8 *present, u8 *dirty)
{
	u32 changes, j, bit, n = DIV_ROUND_UP(c->nchunks, 8);

	changes = atomic_read(&c->changes);
	smp_rmb();	/* bits set before the count was bumped are seen */
	spin_lock(&c->lock);
	for (j = 0; j < n; j++) {
		bit = 8 * j;
		present[j] = vmir_map_byte(c->present, c->nchunks, bit);
		dirty[j] = vmir_map_byte(c->dirty, c->nchunks, bit);
		if (c->committing)
			dirty[j] |= vmir_map_byte(c->commit, c->nchunks, bit);
	}
	spin_unlock(&c->lock);
	return changes;
}

/**
 * vmir_chunks_get_segment - copy bitmap bytes out for GET_STATE
 * @c: the device's chunk state
 * @start: first chunk, a multiple of 8
 * @len: bytes to fill in each buffer
 * @present: present bits
 * @dirty: dirty bits
 * @commit: commit set bits (zeros without a commit)
 *
 * All three are read at one instant. Returns true when a commit is active.
 */
bool vmir_chunks_get_segment(struct vmir_chunks *c, u32 start, u32 len,
			     u8 *present, u8 *dirty, u8 *commit)
{
	bool committing;
	u32 j, bit;

	spin_lock(&c->lock);
	committing = c->committing;
	for (j = 0; j < len; j++) {
		bit = start + 8 * j;
		present[j] = vmir_map_byte(c->present, c->nchunks, bit);
		dirty[j] = vmir_map_byte(c->dirty, c->nchunks, bit);
		commit[j] = committing ?
			    vmir_map_byte(c->commit, c->nchunks, bit) : 0;
	}
	spin_unlock(&c->lock);
	return committing;
}

/* Counters and statistics for GET_STATUS, without walking any map. */
void vmir_chunks_report(struct vmir_chunks *c, struct vmir_chunks_report *r)
{
	spin_lock(&c->lock);
	r->nr_present = c->nr_present;
	r->nr_dirty = atomic_read(&c->nr_dirty);
	r->nr_fetching = c->nr_fetching;
	r->nr_parked = c->nr_parked;
	r->committing = c->committing;
	r->nr_commit = c->nr_commit;
	r->nr_frozen = c->nr_frozen;
	r->stats = c->stats;
	spin_unlock(&c->lock);
	vmir_events_report(c->events, &r->stats.events_sent,
			   &r->stats.event_retries);
}

/*
 * The device is going away: no request may park any more, the parked
 * ones fail, and no event is sent any more. Requests already handed to
 * their work items fail when they re-run admission.
 */
void vmir_chunks_shutdown(struct vmir_chunks *c)
{
	struct vmir_cmd *cmd, *tmp;
	LIST_HEAD(failed);

	spin_lock(&c->lock);
	c->dying = true;
	list_for_each_entry(cmd, &c->parked, park_node)
		cmd->state = VMIR_CMD_RUNNING;
	list_splice_init(&c->parked, &failed);
	c->nr_parked = 0;
	spin_unlock(&c->lock);
	vmir_events_close(c->events);

	list_for_each_entry_safe(cmd, tmp, &failed, park_node) {
		list_del_init(&cmd->park_node);
		vmir_cmd_end(cmd, BLK_STS_IOERR);
	}
}

/*
 * A helper (re)registered in the device's namespace: it knows nothing of
 * earlier events, so every outstanding one is sent again.
 */
void vmir_chunks_resend(struct vmir_chunks *c)
{
	spin_lock(&c->lock);
	vmir_events_resend(c->events, VMIR_EVENT_MISS, c->fetching,
			   c->nr_fetching);
	if (c->committing)
		vmir_events_resend(c->events, VMIR_EVENT_CAPTURE,
				   c->capture_req, c->nr_capture_req);
	spin_unlock(&c->lock);
}
