// SPDX-License-Identifier: GPL-2.0
/*
 * vmir: the blk-mq queue path.
 *
 * BLK_MQ_F_BLOCKING: ->queue_rq runs in the submitter's context (or a
 * kblockd worker) and may sleep. A request whose chunks are all usable
 * (a hit) is served from the mirror file with the file's own read_iter /
 * write_iter, one iov_iter per bio over the bio's own pages (no copy):
 *
 *  - in queue_rq when the request is a read and the mirror's filesystem
 *    can read without waiting (FMODE_NOWAIT): the read is tried with
 *    IOCB_NOWAIT | IOCB_NOIO, which copies from the page cache and never
 *    starts or waits for I/O nor takes a sleeping lock of the mirror's
 *    filesystem (nor a journal handle: the mirror is O_NOATIME), so it
 *    is safe in any submitter: inside a bio submission, a filesystem
 *    transaction, a plug flush holding a filesystem's locks, or kblockd;
 *  - otherwise (a write there, a read whose pages are not cached, a
 *    filesystem without NOWAIT reads such as tmpfs), and for every
 *    request that had to wait for a chunk, on the device's dispatch
 *    list, drained by one work item on an unbound workqueue, as loop
 *    runs its requests: the submitter goes on, the request runs on
 *    another CPU, many requests per wake-up.
 *
 * Where the hits were served is counted (struct vmir_served).
 *
 * Mirror I/O runs as loop's does: PF_MEMALLOC_NOIO (the mirror's page
 * cache may be reclaimed by writing back /dev/vmirN itself) and
 * PF_LOCAL_THROTTLE (writing the mirror is throttled only against the
 * mirror's own disk: the dirty pages of a filesystem on /dev/vmirN wait
 * for us, so waiting for them to be cleaned would never end).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/uio.h>

#include "vmir_chunk.h"
#include "vmir_compat.h"
#include "vmir_dev.h"

/* task flags of mirror I/O (see above) */
#define VMIR_IO_PFLAGS	(PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE)

/* An iterator over the data of @bio, as loop builds it for one bio. */
static void vmir_bio_iter(struct iov_iter *iter, struct bio *bio,
			  unsigned int dir)
{
	struct bvec_iter bi;
	struct bio_vec bv;
	unsigned int nr = 0;

	bio_for_each_bvec(bv, bio, bi)
		nr++;
	iov_iter_bvec(iter, dir, __bvec_iter_bvec(bio->bi_io_vec, bio->bi_iter),
		      nr, bio->bi_iter.bi_size);
	iter->iov_offset = bio->bi_iter.bi_bvec_done;
}

/*
 * Read the request's data from the mirror. Bytes past the image end (the
 * tail of its last sector: the mirror holds the durable map further on)
 * and past the mirror's end (chunks never written) read as zeros.
 * @flags: IOCB_NOWAIT | IOCB_NOIO to read only what the page cache holds:
 * -EAGAIN when that is not everything (the caller then reads again,
 * allowed to wait); 0 for a read that may wait.
 */
static int vmir_mirror_read(struct vmir_device *dev, struct request *rq,
			    loff_t pos, int flags)
{
	u64 end = vmir_chunks_size(dev->chunks);
	struct file *file = dev->mirror;
	struct iov_iter iter;
	struct kiocb kiocb;
	struct bio *bio;
	int retries = 3;
	size_t past;
	ssize_t ret;

	init_sync_kiocb(&kiocb, file);
	kiocb.ki_flags |= flags;
	kiocb.ki_pos = pos;
	__rq_for_each_bio(bio, rq) {
		vmir_bio_iter(&iter, bio, ITER_DEST);
		while (iov_iter_count(&iter)) {
			if (kiocb.ki_pos >= end) {
				kiocb.ki_pos += iov_iter_zero(iov_iter_count(&iter),
							      &iter);
				continue;
			}
			past = iov_iter_count(&iter) -
			       min_t(u64, iov_iter_count(&iter),
				     end - kiocb.ki_pos);
			iov_iter_truncate(&iter, iov_iter_count(&iter) - past);
			ret = call_read_iter(file, &kiocb, &iter);
			iov_iter_reexpand(&iter, iov_iter_count(&iter) + past);
			if (ret < 0)
				return ret;
			if (ret > 0)
				continue;
			/*
			 * Nothing read: the end of the file, or (NOIO) a page
			 * that is not cached. A concurrent write past the end
			 * may just have moved i_size: read again before
			 * zero-filling.
			 */
			if (kiocb.ki_pos < i_size_read(file_inode(file))) {
				if (flags & IOCB_NOIO)
					return -EAGAIN;
				if (--retries < 0)
					return -EIO;
				continue;
			}
			kiocb.ki_pos += iov_iter_zero(iov_iter_count(&iter),
						      &iter);
		}
	}
	return 0;
}

static int vmir_mirror_write(struct vmir_device *dev, struct request *rq,
			     loff_t pos)
{
	u64 end = vmir_chunks_size(dev->chunks);
	struct file *file = dev->mirror;
	struct iov_iter iter;
	struct bio *bio;
	size_t len, keep;
	ssize_t ret;

	__rq_for_each_bio(bio, rq) {
		vmir_bio_iter(&iter, bio, ITER_SOURCE);
		len = iov_iter_count(&iter);
		/* bytes past the image end are not kept: they read as zeros */
		keep = pos >= end ? 0 : min_t(u64, len, end - pos);
		if (keep) {
			iov_iter_truncate(&iter, keep);
			file_start_write(file);
			ret = vfs_iter_write(file, &iter, &pos, 0);
			file_end_write(file);
			if (ret < 0)
				return ret;
			if (ret != keep)
				return -EIO;
		}
		pos += len - keep;
	}
	return 0;
}

/* Write zeros the slow way, for filesystems without the fallocate mode. */
static int vmir_mirror_write_zeros(struct vmir_device *dev, loff_t pos,
				   u64 len)
{
	struct bio_vec bv[16];
	struct iov_iter iter;
	unsigned int i, n;
	size_t bytes;
	ssize_t ret;

	for (i = 0; i < ARRAY_SIZE(bv); i++)
		bvec_set_page(&bv[i], ZERO_PAGE(0), PAGE_SIZE, 0);
	while (len) {
		bytes = min_t(u64, len, ARRAY_SIZE(bv) * PAGE_SIZE);
		n = DIV_ROUND_UP(bytes, PAGE_SIZE);
		iov_iter_bvec(&iter, ITER_SOURCE, bv, n, bytes);
		file_start_write(dev->mirror);
		ret = vfs_iter_write(dev->mirror, &iter, &pos, 0);
		file_end_write(dev->mirror);
		if (ret < 0)
			return ret;
		if (ret != bytes)
			return -EIO;
		len -= bytes;
	}
	return 0;
}

static int vmir_mirror_zero(struct vmir_device *dev, loff_t pos, u64 len,
			    int mode)
{
	u64 end = vmir_chunks_size(dev->chunks);
	int ret;

	if (pos >= end)
		return 0;
	len = min_t(u64, len, end - pos);

	ret = vfs_fallocate(dev->mirror, mode | FALLOC_FL_KEEP_SIZE, pos, len);
	if (ret != -EOPNOTSUPP)
		return ret;
	return vmir_mirror_write_zeros(dev, pos, len);
}

static int vmir_mirror_modify(struct vmir_device *dev, struct request *rq,
			      loff_t pos, u64 len)
{
	switch (req_op(rq)) {
	case REQ_OP_WRITE:
		return vmir_mirror_write(dev, rq, pos);
	case REQ_OP_DISCARD:
		return vmir_mirror_zero(dev, pos, len, FALLOC_FL_PUNCH_HOLE);
	case REQ_OP_WRITE_ZEROES:
		return vmir_mirror_zero(dev, pos, len,
					(rq->cmd_flags & REQ_NOUNMAP) ?
					FALLOC_FL_ZERO_RANGE :
					FALLOC_FL_PUNCH_HOLE);
	default:
		WARN_ON_ONCE(1);
		return -EIO;
	}
}

void vmir_cmd_end(struct vmir_cmd *cmd, blk_status_t status)
{
	blk_mq_end_request(blk_mq_rq_from_pdu(cmd), status);
}

/* a hit served on the dispatch work (struct vmir_served) */
static void vmir_count_worker_hit(struct vmir_cmd *cmd)
{
	/* a request that waited for a chunk was a miss, not a hit */
	if (cmd->waits)
		return;
	this_cpu_inc(cmd->dev->served->worker_hits);
}

/* Serve @cmd from the mirror, or park it; see vmir_cmd_run(). */
static void vmir_cmd_serve(struct vmir_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct vmir_device *dev = cmd->dev;
	u64 pos = (u64)blk_rq_pos(rq) << VMIR_SECTOR_SHIFT;
	u64 len = blk_rq_bytes(rq);
	enum vmir_admit adm;
	int ret;

	switch (req_op(rq)) {
	case REQ_OP_FLUSH:
		ret = vmir_map_commit(dev, false);
		break;
	case REQ_OP_READ:
		adm = vmir_chunks_admit(dev->chunks, cmd, pos, len, false);
		if (adm == VMIR_ADMIT_PARKED)
			return;
		if (adm == VMIR_ADMIT_FAIL) {
			ret = -EIO;
			break;
		}
		ret = vmir_mirror_read(dev, rq, pos, 0);
		if (!ret)
			vmir_count_worker_hit(cmd);
		break;
	case REQ_OP_WRITE:
	case REQ_OP_DISCARD:
	case REQ_OP_WRITE_ZEROES:
		if (dev->add_flags & VMIR_ADD_F_READ_ONLY) {
			ret = -EROFS;
			break;
		}
		adm = vmir_chunks_admit(dev->chunks, cmd, pos, len, true);
		if (adm == VMIR_ADMIT_PARKED)
			return;
		if (adm == VMIR_ADMIT_FAIL) {
			ret = -EIO;
			break;
		}
		ret = vmir_mirror_modify(dev, rq, pos, len);
		vmir_chunks_write_done(dev->chunks);
		/* FUA: the data, and the map if it says something new */
		if (!ret && (rq->cmd_flags & REQ_FUA))
			ret = vmir_map_stale(dev) ?
			      vmir_map_commit(dev, false) :
			      vfs_fsync_range(dev->mirror, pos, pos + len - 1,
					      1);
		if (!ret)
			vmir_count_worker_hit(cmd);
		break;
	default:
		ret = -EOPNOTSUPP;
		break;
	}
	if (ret)
		dev_err_ratelimited(disk_to_dev(dev->disk),
				    "op %u of %llu bytes at byte %llu failed on the mirror: %d\n",
				    req_op(rq), len, pos, ret);
	vmir_cmd_end(cmd, errno_to_blk_status(ret));
}

/*
 * Run @cmd: serve it from the mirror, or park it, with the task flags of
 * mirror I/O. The caller owns it; on return it is completed or parked, and
 * the device must not be touched (a parked request may already be
 * completed by someone else).
 */
static void vmir_cmd_run(struct vmir_cmd *cmd)
{
	unsigned int pflags = current->flags & VMIR_IO_PFLAGS;

	current->flags |= VMIR_IO_PFLAGS;
	vmir_cmd_serve(cmd);
	current->flags = (current->flags & ~VMIR_IO_PFLAGS) | pflags;
}

/**
 * vmir_cmd_queue - hand a request to the device's dispatch work
 * @cmd: a QUEUED request its caller owned (queue_rq, or a waker under the
 *	chunk lock, which nests outside dev->queue_lock)
 *
 * The dispatch work owns it from here.
 */
void vmir_cmd_queue(struct vmir_cmd *cmd)
{
	struct vmir_device *dev = cmd->dev;

	spin_lock(&dev->queue_lock);
	list_add_tail(&cmd->queue_node, &dev->queue);
	spin_unlock(&dev->queue_lock);
	queue_work(dev->wq, &dev->queue_work);
}

/* dev->queue_work: run the queued requests, in order, until none is left */
void vmir_dispatch_work(struct work_struct *work)
{
	struct vmir_device *dev = container_of(work, struct vmir_device,
					       queue_work);
	struct vmir_cmd *cmd, *tmp;
	LIST_HEAD(batch);

	for (;;) {
		spin_lock(&dev->queue_lock);
		list_splice_init(&dev->queue, &batch);
		spin_unlock(&dev->queue_lock);
		if (list_empty(&batch))
			return;
		list_for_each_entry_safe(cmd, tmp, &batch, queue_node) {
			list_del_init(&cmd->queue_node);
			/* QUEUED: this work owns it until it parks again */
			vmir_cmd_run(cmd);
		}
	}
}

void vmir_served_sum(struct vmir_device *dev, struct vmir_served *sum)
{
	const struct vmir_served *s;
	int cpu;

	memset(sum, 0, sizeof(*sum));
	for_each_possible_cpu(cpu) {
		s = per_cpu_ptr(dev->served, cpu);
		sum->nowait_hits += READ_ONCE(s->nowait_hits);
		sum->worker_hits += READ_ONCE(s->worker_hits);
	}
}

/*
 * A read in queue_rq, where mirror I/O may not wait: served there if
 * every chunk is present and the page cache holds all of its data, read
 * without starting or waiting for I/O. Returns true when it completed
 * the request; false leaves it to the caller, untouched (a partial read
 * wrote only into the request's own pages, which the caller reads again).
 */
static bool vmir_try_read_nowait(struct vmir_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct vmir_device *dev = cmd->dev;
	u64 pos = (u64)blk_rq_pos(rq) << VMIR_SECTOR_SHIFT;
	unsigned int noio;
	int ret;

	if (req_op(rq) != REQ_OP_READ ||
	    !(dev->mirror->f_mode & FMODE_NOWAIT) ||
	    !vmir_chunks_all_present(dev->chunks, pos, blk_rq_bytes(rq)))
		return false;
	noio = memalloc_noio_save();
	ret = vmir_mirror_read(dev, rq, pos, IOCB_NOWAIT | IOCB_NOIO);
	memalloc_noio_restore(noio);
	if (ret == -EAGAIN)
		return false;
	if (!ret)
		this_cpu_inc(dev->served->nowait_hits);
	vmir_cmd_end(cmd, errno_to_blk_status(ret));
	return true;
}

static blk_status_t vmir_queue_rq(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd)
{
	struct request *rq = bd->rq;
	struct vmir_cmd *cmd = blk_mq_rq_to_pdu(rq);

	cmd->state = VMIR_CMD_RUNNING;
	cmd->waits = 0;
	cmd->park_ns = 0;
	cmd->status = BLK_STS_OK;
	blk_mq_start_request(rq);
	if (req_op(rq) != REQ_OP_FLUSH && blk_rq_bytes(rq))
		vmir_chunks_note_access(cmd->dev->chunks,
					(u64)blk_rq_pos(rq) << VMIR_SECTOR_SHIFT,
					blk_rq_bytes(rq));
	/*
	 * Only a read the page cache holds is served here: mirror I/O that
	 * may wait never runs in the submitter's context. That context may
	 * be a bio submission (the mirror's own bios would wait on
	 * current->bio_list), a jbd2 handle of a filesystem on /dev/vmirN
	 * (handles of two journals do not nest), kblockd (which also
	 * dispatches the mirror's disk), or a plug flush under a
	 * filesystem's locks (its readahead holds the file's
	 * invalidate_lock, which a blocking read of the mirror takes too:
	 * lockdep reports it, crash/001 under make check-kernel-debug).
	 * Loop never touches its backing file there either.
	 */
	if (!vmir_try_read_nowait(cmd)) {
		cmd->state = VMIR_CMD_QUEUED;
		vmir_cmd_queue(cmd);
	}
	return BLK_STS_OK;
}

/*
 * Only parked requests time out: the deadline is the device timeout from
 * the request's start. A request doing mirror I/O gets more time.
 */
static enum blk_eh_timer_return vmir_timeout(struct request *rq)
{
	struct vmir_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct vmir_device *dev = cmd->dev;

	if (!vmir_chunks_expire(dev->chunks, cmd))
		return BLK_EH_RESET_TIMER;
	dev_err_ratelimited(disk_to_dev(dev->disk),
			    "%s at byte %llu (chunks %u-%u) waited %u ms for %s; failing it (is vmir-helper running?)\n",
			    cmd->write ? "write" : "read", cmd->pos,
			    cmd->first, cmd->last, dev->timeout_ms,
			    (cmd->waits & VMIR_WAIT_CAPTURE) ?
			    "a fetch or a commit capture" : "a fetch");
	cmd->status = BLK_STS_IOERR;
	blk_mq_complete_request(rq);
	return BLK_EH_DONE;
}

static void vmir_complete_rq(struct request *rq)
{
	struct vmir_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_end_request(rq, cmd->status);
}

static int vmir_init_request(struct blk_mq_tag_set *set, struct request *rq,
			     unsigned int hctx_idx, unsigned int numa_node)
{
	struct vmir_cmd *cmd = blk_mq_rq_to_pdu(rq);

	cmd->dev = set->driver_data;
	INIT_LIST_HEAD(&cmd->park_node);
	INIT_LIST_HEAD(&cmd->queue_node);
	cmd->state = VMIR_CMD_RUNNING;
	return 0;
}

static const struct blk_mq_ops vmir_mq_ops = {
	.queue_rq	= vmir_queue_rq,
	.complete	= vmir_complete_rq,
	.timeout	= vmir_timeout,
	.init_request	= vmir_init_request,
};

static const struct block_device_operations vmir_fops = {
	.owner		= THIS_MODULE,
};

/* Allocate the tag set and the disk (not added yet) of @dev. */
int vmir_blk_init_disk(struct vmir_device *dev)
{
	struct blk_mq_tag_set *set = &dev->tag_set;
	u32 per_chunk = vmir_chunks_chunk_size(dev->chunks) >>
			VMIR_SECTOR_SHIFT;
	unsigned int max_sectors = max_t(u32, VMIR_MAX_HW_SECTORS, per_chunk);
	/*
	 * A whole chunk fits in one request, whatever its pages
	 * (max_segments: a page each at worst), and the block layer splits
	 * larger I/O only at multiples of max_sectors (chunk_sectors), which
	 * are chunk boundaries: a write that covers whole chunks arrives as
	 * whole chunks and never fetches what it overwrites. Aligned 1 MiB
	 * I/O over small chunks stays one request. The mirror's I/O walks
	 * the bvecs as they come, so segments have no size limit.
	 */
	struct vmir_queue_params qp = {
		.logical_block_size = 512,
		.physical_block_size = 4096,
		.max_hw_sectors = max_sectors,
		/* + 1: a buffer that does not start on a page spans one more */
		.max_segments = (max_sectors >> (PAGE_SHIFT - VMIR_SECTOR_SHIFT)) + 1,
		.max_segment_size = UINT_MAX,
		.chunk_sectors = max_sectors,
		.max_discard_sectors = VMIR_MAX_DISCARD_SECTORS,
		.max_write_zeroes_sectors = VMIR_MAX_DISCARD_SECTORS,
		.discard_granularity = 4096,
	};
	struct gendisk *disk;
	int ret;

	set->ops = &vmir_mq_ops;
	set->nr_hw_queues = num_online_cpus();
	set->queue_depth = vmir_queue_depth;
	set->numa_node = NUMA_NO_NODE;
	set->cmd_size = sizeof(struct vmir_cmd);
	set->flags = BLK_MQ_F_SHOULD_MERGE | BLK_MQ_F_BLOCKING;
	set->driver_data = dev;
	set->timeout = msecs_to_jiffies(dev->timeout_ms);
	ret = blk_mq_alloc_tag_set(set);
	if (ret)
		goto out;

	disk = vmir_compat_alloc_disk(set, &qp, dev);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		goto out_free_tags;
	}
	disk->major = vmir_major;
	disk->first_minor = dev->id;
	disk->minors = 1;
	disk->fops = &vmir_fops;
	disk->private_data = dev;
	/* No partition scan: add_disk must not read (and so fetch). */
	disk->flags |= GENHD_FL_NO_PART;
	snprintf(disk->disk_name, DISK_NAME_LEN, "vmir%d", dev->id);
	set_capacity(disk, round_up(vmir_chunks_size(dev->chunks), 512) >>
		     VMIR_SECTOR_SHIFT);
	if (dev->add_flags & VMIR_ADD_F_READ_ONLY)
		set_disk_ro(disk, true);
	dev->disk = disk;
	return 0;

out_free_tags:
	blk_mq_free_tag_set(set);
out:
	return ret;
}

/* Release what vmir_blk_init_disk() allocated; del_gendisk() came first. */
void vmir_blk_free_disk(struct vmir_device *dev)
{
	put_disk(dev->disk);
	dev->disk = NULL;
	blk_mq_free_tag_set(&dev->tag_set);
}
