// SPDX-License-Identifier: GPL-2.0
/*
 * vmir: per-chunk state and the rules that decide when a request may touch
 * the mirror.
 *
 * A request is admitted when every chunk it touches is usable: present
 * (for a write that covers a whole missing chunk, nothing needs fetching:
 * the write itself fills it) and, for a request that modifies the mirror
 * during a commit, not frozen. Otherwise it is parked on dev->parked and
 * the missing chunks are asked for with one MISS each (a chunk already
 * being fetched is not asked for again), frozen chunks with one
 * CAPTURE_NEEDED each. Answers wake the parked requests that touch the
 * chunk; they re-run admission from their work item.
 *
 * Events are not sent from the I/O path: admission marks them pending and
 * kicks dev->event_work, which delivers them to the registered helper and
 * keeps them pending while there is none (or its socket is full).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "vmir_dev.h"

static unsigned long *vmir_map_alloc(u32 nbits)
{
	return kvcalloc(BITS_TO_LONGS(nbits), sizeof(unsigned long),
			GFP_KERNEL);
}

int vmir_chunks_init(struct vmir_chunks *c, u64 size, u32 chunk_size)
{
	u32 n;

	memset(c, 0, sizeof(*c));
	c->size = size;
	c->chunk_shift = ilog2(chunk_size);
	n = DIV_ROUND_UP_ULL(size, chunk_size);
	c->nchunks = n;

	c->present = vmir_map_alloc(n);
	if (!c->present)
		goto out_nomem;
	c->dirty = vmir_map_alloc(n);
	if (!c->dirty)
		goto out_free_present;
	c->fetching = vmir_map_alloc(n);
	if (!c->fetching)
		goto out_free_dirty;
	c->miss_pending = vmir_map_alloc(n);
	if (!c->miss_pending)
		goto out_free_fetching;
	return 0;

out_free_fetching:
	kvfree(c->fetching);
out_free_dirty:
	kvfree(c->dirty);
out_free_present:
	kvfree(c->present);
out_nomem:
	return -ENOMEM;
}

void vmir_chunks_free(struct vmir_chunks *c)
{
	kvfree(c->capture_pending);
	kvfree(c->capture_req);
	kvfree(c->frozen);
	kvfree(c->commit);
	kvfree(c->miss_pending);
	kvfree(c->fetching);
	kvfree(c->dirty);
	kvfree(c->present);
}

/* Image bytes held by @chunk: chunk_size, less for the last chunk. */
u32 vmir_chunk_bytes(const struct vmir_chunks *c, u32 chunk)
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

/* Schedule the event work; the caller has pending events. */
static void vmir_kick_events_locked(struct vmir_device *dev)
{
	lockdep_assert_held(&dev->lock);
	if (!dev->dying)
		mod_delayed_work(dev->wq, &dev->event_work, 0);
}

/*
 * Hand the parked requests touching @chunk (all of them for U32_MAX) that
 * waited for @why to their work items. Returns the earliest park time of
 * the woken requests, U64_MAX if none.
 */
static u64 vmir_wake_locked(struct vmir_device *dev, u32 chunk,
			    unsigned int why)
{
	struct vmir_cmd *cmd, *tmp;
	u64 oldest = U64_MAX;

	lockdep_assert_held(&dev->lock);
	list_for_each_entry_safe(cmd, tmp, &dev->parked, park_node) {
		if (chunk != U32_MAX && !vmir_cmd_touches(cmd, chunk))
			continue;
		if (!(cmd->waits & why))
			continue;
		if (WARN_ON_ONCE(cmd->state != VMIR_CMD_PARKED))
			continue;
		oldest = min(oldest, cmd->park_ns);
		list_del_init(&cmd->park_node);
		cmd->state = VMIR_CMD_QUEUED;
		queue_work(dev->wq, &cmd->work);
	}
	return oldest;
}

static void vmir_mark_written(struct vmir_chunks *c, u32 first, u32 last)
{
	u32 i;

	for (i = first; i <= last; i++)
		if (!test_bit(i, c->dirty))
			set_bit(i, c->dirty);
}

/* Slow path of vmir_chunks_admit(), under dev->lock. */
static enum vmir_admit vmir_admit_locked(struct vmir_device *dev,
					 struct vmir_cmd *cmd)
{
	struct vmir_chunks *c = &dev->chunks;
	unsigned int why = 0;
	bool kick = false;
	u32 i;

	lockdep_assert_held(&dev->lock);
	if (dev->dying)
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
			__set_bit(i, c->miss_pending);
			c->nr_miss_pending++;
			dev->stats.misses++;
			kick = true;
		} else if (cmd->write && c->committing &&
			   test_bit(i, c->frozen)) {
			why |= VMIR_WAIT_CAPTURE;
			if (test_bit(i, c->capture_req))
				continue;
			__set_bit(i, c->capture_req);
			__set_bit(i, c->capture_pending);
			c->nr_capture_pending++;
			kick = true;
		}
	}

	if (why) {
		if ((why & VMIR_WAIT_FETCH) && !(cmd->waits & VMIR_WAIT_FETCH))
			dev->stats.miss_waits++;
		if ((why & VMIR_WAIT_CAPTURE) &&
		    !(cmd->waits & VMIR_WAIT_CAPTURE))
			dev->stats.capture_waits++;
		cmd->waits |= why;
		if (!cmd->park_ns)
			cmd->park_ns = ktime_get_ns();
		cmd->state = VMIR_CMD_PARKED;
		list_add_tail(&cmd->park_node, &dev->parked);
		if (kick)
			vmir_kick_events_locked(dev);
		return VMIR_ADMIT_PARKED;
	}

	if (cmd->write) {
		for (i = cmd->first; i <= cmd->last; i++) {
			if (test_bit(i, c->present))
				continue;
			/* Publish after the fill decision; readers acquire. */
			smp_mb__before_atomic();
			set_bit(i, c->present);
		}
		vmir_mark_written(c, cmd->first, cmd->last);
	}
	cmd->state = VMIR_CMD_RUNNING;
	return VMIR_ADMIT_RUN;
}

/**
 * vmir_chunks_admit - may @cmd touch the mirror now?
 * @dev: the device
 * @cmd: the request, owned by the caller (RUNNING or QUEUED)
 * @pos: first byte
 * @len: bytes
 * @write: the request modifies the mirror (write, discard, write zeroes);
 *	the caller then holds dev->gate for read.
 *
 * Returns VMIR_ADMIT_RUN with the chunks made usable (a write has marked
 * them present and dirty), VMIR_ADMIT_PARKED when the request now belongs
 * to dev->lock (the caller must not touch it or the device any more), or
 * VMIR_ADMIT_FAIL when the device is going away. For a write, dev->gate is
 * released on return unless the result is VMIR_ADMIT_RUN.
 */
enum vmir_admit vmir_chunks_admit(struct vmir_device *dev,
				  struct vmir_cmd *cmd, u64 pos, u64 len,
				  bool write)
{
	struct vmir_chunks *c = &dev->chunks;
	enum vmir_admit ret;
	u32 i;

	cmd->pos = pos;
	cmd->end = pos + len;
	cmd->write = write;
	cmd->first = pos >> c->chunk_shift;
	cmd->last = (pos + len - 1) >> c->chunk_shift;
	if (WARN_ON_ONCE(!len || cmd->last >= c->nchunks)) {
		if (write)
			percpu_up_read(&dev->gate);
		return VMIR_ADMIT_FAIL;
	}

	/*
	 * Fast path without dev->lock: present bits are never cleared, and
	 * a writer holding the gate sees committing and the dirty map fixed.
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

	spin_lock(&dev->lock);
	ret = vmir_admit_locked(dev, cmd);
	/* A parked request may complete as soon as the lock drops. */
	if (write && ret != VMIR_ADMIT_RUN)
		percpu_up_read(&dev->gate);
	spin_unlock(&dev->lock);
	return ret;
}

/**
 * vmir_chunk_prefetch - PREFETCH: the helper claims a missing chunk
 * @dev: the device
 * @chunk: chunk index, < nchunks
 *
 * The chunk becomes fetching without a MISS event: requests touching it
 * wait for the helper's CHUNK_READY like after a miss, and a helper that
 * registers later gets a MISS for it. Returns 0, -EEXIST if present,
 * -EALREADY if already fetching, -ENODEV if the device is stopping.
 */
int vmir_chunk_prefetch(struct vmir_device *dev, u32 chunk)
{
	struct vmir_chunks *c = &dev->chunks;
	int ret = 0;

	spin_lock(&dev->lock);
	if (dev->dying) {
		ret = -ENODEV;
	} else if (test_bit(chunk, c->present)) {
		ret = -EEXIST;
	} else if (test_bit(chunk, c->fetching)) {
		ret = -EALREADY;
	} else {
		__set_bit(chunk, c->fetching);
		c->nr_fetching++;
		dev->stats.prefetches++;
	}
	spin_unlock(&dev->lock);
	return ret;
}

/**
 * vmir_chunk_ready - the helper answered the MISS for @chunk
 * @dev: the device
 * @chunk: chunk index, < nchunks
 * @status: 0 (the mirror now holds the chunk) or -errno
 *
 * Returns 0, or -ENOENT when no MISS is outstanding for @chunk.
 */
int vmir_chunk_ready(struct vmir_device *dev, u32 chunk, int status)
{
	struct vmir_chunks *c = &dev->chunks;
	struct vmir_cmd *cmd, *tmp;
	LIST_HEAD(failed);
	u64 oldest;

	spin_lock(&dev->lock);
	if (!test_bit(chunk, c->fetching)) {
		spin_unlock(&dev->lock);
		return -ENOENT;
	}
	__clear_bit(chunk, c->fetching);
	c->nr_fetching--;
	if (__test_and_clear_bit(chunk, c->miss_pending))
		c->nr_miss_pending--;

	if (!status) {
		/* The helper's writes to the mirror precede this answer. */
		smp_mb__before_atomic();
		set_bit(chunk, c->present);
		dev->stats.fetched_chunks++;
		dev->stats.fetched_bytes += vmir_chunk_bytes(c, chunk);
		oldest = vmir_wake_locked(dev, chunk, VMIR_WAIT_FETCH);
		if (oldest != U64_MAX) {
			dev->stats.fetch_lat_sum_ns += ktime_get_ns() - oldest;
			dev->stats.fetch_lat_count++;
		}
		spin_unlock(&dev->lock);
		return 0;
	}

	dev->stats.fetch_errors++;
	list_for_each_entry_safe(cmd, tmp, &dev->parked, park_node) {
		if (!vmir_cmd_touches(cmd, chunk))
			continue;
		if (!vmir_cmd_needs(c, cmd, chunk)) {
			/* It overwrites the chunk: let it retry admission. */
			list_del_init(&cmd->park_node);
			cmd->state = VMIR_CMD_QUEUED;
			queue_work(dev->wq, &cmd->work);
			continue;
		}
		list_move_tail(&cmd->park_node, &failed);
		cmd->state = VMIR_CMD_RUNNING;
	}
	spin_unlock(&dev->lock);

	list_for_each_entry_safe(cmd, tmp, &failed, park_node) {
		list_del_init(&cmd->park_node);
		dev_err_ratelimited(disk_to_dev(dev->disk),
				    "%s at byte %llu failed: fetching chunk %u failed with error %d\n",
				    cmd->write ? "write" : "read", cmd->pos,
				    chunk, status);
		vmir_cmd_end(cmd, BLK_STS_IOERR);
	}
	return 0;
}

/**
 * vmir_chunk_captured - userspace copied commit chunk @chunk out
 * @dev: the device
 * @chunk: chunk index, < nchunks
 *
 * Returns 0 (also when it was reported before), -ENOENT when no commit is
 * active or @chunk is not in the commit set.
 */
int vmir_chunk_captured(struct vmir_device *dev, u32 chunk)
{
	struct vmir_chunks *c = &dev->chunks;

	spin_lock(&dev->lock);
	if (!c->committing || !test_bit(chunk, c->commit)) {
		spin_unlock(&dev->lock);
		return -ENOENT;
	}
	if (test_bit(chunk, c->frozen)) {
		__clear_bit(chunk, c->frozen);
		__clear_bit(chunk, c->capture_req);
		if (__test_and_clear_bit(chunk, c->capture_pending))
			c->nr_capture_pending--;
		vmir_wake_locked(dev, chunk, VMIR_WAIT_CAPTURE);
	}
	spin_unlock(&dev->lock);
	return 0;
}

/**
 * vmir_commit_begin - freeze the dirty set as the commit set
 * @dev: the device; the caller holds dev->ctl_lock
 * @nr_commit: set to the number of chunks in the commit set
 *
 * Waits for the writes in progress (dev->gate), then moves the dirty map
 * into the commit set in one step. Returns 0, -EBUSY when a commit is
 * active, -ENOMEM.
 */
int vmir_commit_begin(struct vmir_device *dev, u32 *nr_commit)
{
	struct vmir_chunks *c = &dev->chunks;
	unsigned long *dirty, *frozen, *req, *pending;
	int ret = -ENOMEM;

	lockdep_assert_held(&dev->ctl_lock);
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
	pending = vmir_map_alloc(c->nchunks);
	if (!pending)
		goto out_free_req;

	percpu_down_write(&dev->gate);
	spin_lock(&dev->lock);
	/* Only COMMIT_BEGIN sets it, under ctl_lock, which we hold. */
	WARN_ON_ONCE(c->committing);
	c->commit = c->dirty;
	c->dirty = dirty;
	bitmap_copy(frozen, c->commit, c->nchunks);
	c->frozen = frozen;
	c->capture_req = req;
	c->capture_pending = pending;
	c->nr_commit = bitmap_weight(c->commit, c->nchunks);
	c->nr_capture_pending = 0;
	WRITE_ONCE(c->committing, true);
	*nr_commit = c->nr_commit;
	spin_unlock(&dev->lock);
	percpu_up_write(&dev->gate);
	return 0;

out_free_req:
	kvfree(req);
out_free_frozen:
	kvfree(frozen);
out_free_dirty:
	kvfree(dirty);
out:
	return ret;
}

/**
 * vmir_commit_end - finish the active commit
 * @dev: the device; the caller holds dev->ctl_lock
 * @status: 0 when the commit set was published, else -errno: the commit
 *	set becomes dirty again
 *
 * Returns 0, or -ENOENT when no commit is active.
 */
int vmir_commit_end(struct vmir_device *dev, int status)
{
	struct vmir_chunks *c = &dev->chunks;
	unsigned long *commit, *frozen, *req, *pending;

	lockdep_assert_held(&dev->ctl_lock);
	percpu_down_write(&dev->gate);
	spin_lock(&dev->lock);
	if (!c->committing) {
		spin_unlock(&dev->lock);
		percpu_up_write(&dev->gate);
		return -ENOENT;
	}
	/* No writer holds the gate: the dirty map is ours to merge into. */
	if (status)
		bitmap_or(c->dirty, c->dirty, c->commit, c->nchunks);
	commit = c->commit;
	frozen = c->frozen;
	req = c->capture_req;
	pending = c->capture_pending;
	c->commit = NULL;
	c->frozen = NULL;
	c->capture_req = NULL;
	c->capture_pending = NULL;
	c->nr_commit = 0;
	c->nr_capture_pending = 0;
	WRITE_ONCE(c->committing, false);
	vmir_wake_locked(dev, U32_MAX, VMIR_WAIT_CAPTURE);
	spin_unlock(&dev->lock);
	percpu_up_write(&dev->gate);

	kvfree(pending);
	kvfree(req);
	kvfree(frozen);
	kvfree(commit);
	return 0;
}

/*
 * Bitmap bytes on the wire: bit b of byte j is chunk start + 8 * j + b.
 * @start is a multiple of 8, so a byte never straddles two longs.
 */
static u8 vmir_map_byte(const unsigned long *map, u32 nbits, u32 bit)
{
	unsigned long word;
	u8 b;

	if (bit >= nbits)
		return 0;
	word = map[BIT_WORD(bit)];
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
 * @c: chunk state of a device that has no disk yet (SETUP)
 * @start: first chunk, a multiple of 8, < nchunks
 * @present: @len bytes
 * @dirty: @len bytes or NULL (all clean); a subset of @present
 * @len: bytes, start + 8 * len <= round_up(nchunks, 8)
 *
 * The caller validated the segment (vmir_genl.c) and holds ctl_lock.
 */
int vmir_chunks_set_segment(struct vmir_chunks *c, u32 start,
			    const u8 *present, const u8 *dirty, u32 len)
{
	u32 j;

	if (WARN_ON_ONCE(start % 8 || start >= c->nchunks ||
			 len > DIV_ROUND_UP(c->nchunks - start, 8)))
		return -EINVAL;
	for (j = 0; j < len; j++) {
		vmir_map_set_byte(c->present, start + 8 * j, present[j]);
		vmir_map_set_byte(c->dirty, start + 8 * j,
				  dirty ? dirty[j] : 0);
	}
	return 0;
}

/**
 * vmir_chunks_get_segment - copy bitmap bytes out for GET_STATE
 * @dev: the device; the caller holds dev->lock
 * @start: first chunk, a multiple of 8
 * @len: bytes to fill in each non-NULL buffer
 * @present: present bits
 * @dirty: dirty bits
 * @commit: commit set bits, or NULL (must be NULL without a commit)
 */
void vmir_chunks_get_segment(struct vmir_device *dev, u32 start, u32 len,
			     u8 *present, u8 *dirty, u8 *commit)
{
	struct vmir_chunks *c = &dev->chunks;
	u32 j, bit;

	lockdep_assert_held(&dev->lock);
	WARN_ON_ONCE(commit && !c->committing);
	for (j = 0; j < len; j++) {
		bit = start + 8 * j;
		present[j] = vmir_map_byte(c->present, c->nchunks, bit);
		dirty[j] = vmir_map_byte(c->dirty, c->nchunks, bit);
		if (commit)
			commit[j] = vmir_map_byte(c->commit, c->nchunks, bit);
	}
}

/*
 * The device is going away: no request may park any more, and the parked
 * ones fail. Requests already handed to their work items fail when they
 * re-run admission.
 */
void vmir_chunks_fail_all(struct vmir_device *dev)
{
	struct vmir_cmd *cmd, *tmp;
	LIST_HEAD(failed);

	spin_lock(&dev->lock);
	dev->dying = true;
	list_for_each_entry(cmd, &dev->parked, park_node)
		cmd->state = VMIR_CMD_RUNNING;
	list_splice_init(&dev->parked, &failed);
	spin_unlock(&dev->lock);

	list_for_each_entry_safe(cmd, tmp, &failed, park_node) {
		list_del_init(&cmd->park_node);
		vmir_cmd_end(cmd, BLK_STS_IOERR);
	}
}

/*
 * A helper (re)registered in the device's namespace: it knows nothing of
 * earlier events, so every outstanding one is sent again.
 */
void vmir_chunks_resend(struct vmir_device *dev)
{
	struct vmir_chunks *c = &dev->chunks;

	spin_lock(&dev->lock);
	bitmap_copy(c->miss_pending, c->fetching, c->nchunks);
	dev->stats.event_retries += c->nr_fetching - c->nr_miss_pending;
	c->nr_miss_pending = c->nr_fetching;
	if (c->committing) {
		bitmap_copy(c->capture_pending, c->capture_req, c->nchunks);
		c->nr_capture_pending = bitmap_weight(c->capture_pending,
						      c->nchunks);
	}
	if (c->nr_miss_pending || c->nr_capture_pending)
		vmir_kick_events_locked(dev);
	spin_unlock(&dev->lock);
}

/* Take one pending event; false when there is none. */
static bool vmir_event_pop(struct vmir_device *dev, u8 *cmd, u32 *chunk)
{
	struct vmir_chunks *c = &dev->chunks;
	unsigned long i;

	lockdep_assert_held(&dev->lock);
	if (c->nr_miss_pending) {
		i = find_first_bit(c->miss_pending, c->nchunks);
		if (!WARN_ON_ONCE(i >= c->nchunks)) {
			__clear_bit(i, c->miss_pending);
			c->nr_miss_pending--;
			*cmd = VMIR_CMD_MISS;
			*chunk = i;
			return true;
		}
		c->nr_miss_pending = 0;
	}
	if (c->committing && c->nr_capture_pending) {
		i = find_first_bit(c->capture_pending, c->nchunks);
		if (!WARN_ON_ONCE(i >= c->nchunks)) {
			__clear_bit(i, c->capture_pending);
			c->nr_capture_pending--;
			*cmd = VMIR_CMD_CAPTURE_NEEDED;
			*chunk = i;
			return true;
		}
		c->nr_capture_pending = 0;
	}
	return false;
}

/* Delivery failed: make the event pending again if it is still wanted. */
static void vmir_event_push_back(struct vmir_device *dev, u8 cmd, u32 chunk)
{
	struct vmir_chunks *c = &dev->chunks;

	lockdep_assert_held(&dev->lock);
	if (cmd == VMIR_CMD_MISS) {
		if (test_bit(chunk, c->fetching) &&
		    !__test_and_set_bit(chunk, c->miss_pending))
			c->nr_miss_pending++;
	} else if (c->committing && test_bit(chunk, c->capture_req)) {
		if (!__test_and_set_bit(chunk, c->capture_pending))
			c->nr_capture_pending++;
	}
}

/* dev->event_work: deliver pending MISS and CAPTURE_NEEDED events. */
void vmir_event_work(struct work_struct *work)
{
	struct vmir_device *dev = container_of(to_delayed_work(work),
					       struct vmir_device, event_work);
	u32 chunk;
	u8 cmd;
	int ret;

	for (;;) {
		spin_lock(&dev->lock);
		if (dev->dying || !vmir_event_pop(dev, &cmd, &chunk)) {
			spin_unlock(&dev->lock);
			return;
		}
		spin_unlock(&dev->lock);

		ret = vmir_genl_send_event(dev, cmd, chunk);

		spin_lock(&dev->lock);
		if (!ret) {
			dev->stats.events_sent++;
		} else {
			vmir_event_push_back(dev, cmd, chunk);
			if (ret != -ENOTCONN)
				dev->stats.event_retries++;
		}
		spin_unlock(&dev->lock);

		/* No helper: its registration sends everything again. */
		if (ret == -ENOTCONN)
			return;
		if (ret) {
			queue_delayed_work(dev->wq, &dev->event_work,
					   VMIR_EVENT_RETRY);
			return;
		}
	}
}
