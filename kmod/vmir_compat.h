/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir: wrappers for kernel calls that changed after 6.1.
 *
 * The module is built and tested on 6.1; the newer branches follow the
 * upstream API changes and are compile-checked only where such a kernel
 * is at hand.
 */
#ifndef VMIR_COMPAT_H
#define VMIR_COMPAT_H

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/version.h>
#include <net/genetlink.h>

#ifndef BLK_MQ_F_SHOULD_MERGE
#define BLK_MQ_F_SHOULD_MERGE 0		/* merging is the default (6.14+) */
#endif

struct vmir_queue_params {
	unsigned int logical_block_size;
	unsigned int physical_block_size;
	unsigned int max_hw_sectors;
	unsigned int max_segments;
	unsigned int max_segment_size;
	unsigned int chunk_sectors;
	unsigned int max_discard_sectors;
	unsigned int max_write_zeroes_sectors;
	unsigned int discard_granularity;
};

/* blk_mq_alloc_disk() takes queue_limits since 6.9, features since 6.11. */
static inline struct gendisk *
vmir_compat_alloc_disk(struct blk_mq_tag_set *set,
		       const struct vmir_queue_params *p, void *queuedata)
{
	struct gendisk *disk;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	struct queue_limits lim = {
		.logical_block_size = p->logical_block_size,
		.physical_block_size = p->physical_block_size,
		.max_hw_sectors = p->max_hw_sectors,
		.max_user_sectors = p->max_hw_sectors,
		.max_segments = p->max_segments,
		.max_segment_size = p->max_segment_size,
		.chunk_sectors = p->chunk_sectors,
		.max_hw_discard_sectors = p->max_discard_sectors,
		.max_write_zeroes_sectors = p->max_write_zeroes_sectors,
		.discard_granularity = p->discard_granularity,
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
		.features = BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA,
#endif
	};

	disk = blk_mq_alloc_disk(set, &lim, queuedata);
	if (IS_ERR(disk))
		return disk;
#else
	struct request_queue *q;

	disk = blk_mq_alloc_disk(set, queuedata);
	if (IS_ERR(disk))
		return disk;
	q = disk->queue;
	blk_queue_logical_block_size(q, p->logical_block_size);
	blk_queue_physical_block_size(q, p->physical_block_size);
	blk_queue_max_hw_sectors(q, p->max_hw_sectors);
	/* 6.1 caps max_sectors at BLK_DEF_MAX_SECTORS; a whole chunk must fit */
	q->limits.max_sectors = p->max_hw_sectors;
	blk_queue_max_segments(q, p->max_segments);
	blk_queue_max_segment_size(q, p->max_segment_size);
	blk_queue_chunk_sectors(q, p->chunk_sectors);
	blk_queue_max_discard_sectors(q, p->max_discard_sectors);
	blk_queue_max_write_zeroes_sectors(q, p->max_write_zeroes_sectors);
	q->limits.discard_granularity = p->discard_granularity;
#endif
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 11, 0)
	/* Queue features became limits in 6.11; non-rotational is default. */
	blk_queue_flag_set(QUEUE_FLAG_NONROT, disk->queue);
	blk_queue_write_cache(disk->queue, true, true);
#endif
	return disk;
}

/*
 * The ops a family's pre_doit/post_doit see: struct genl_ops in 6.1,
 * struct genl_split_ops since 6.2. Both carry internal_flags.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define vmir_compat_genl_ops	genl_split_ops
#else
#define vmir_compat_genl_ops	genl_ops
#endif

/* The parsed attributes of a dump request (in genl_info since 6.2). */
static inline struct nlattr **
vmir_compat_dump_attrs(struct netlink_callback *cb)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
	return genl_dumpit_info(cb)->info.attrs;
#else
	return genl_dumpit_info(cb)->attrs;
#endif
}

#endif /* VMIR_COMPAT_H */
