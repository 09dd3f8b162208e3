// SPDX-License-Identifier: GPL-2.0
/*
 * vmir: the durable map, the chunk state kept in the mirror file so that
 * what a FLUSH acknowledged survives a crash of the node (format in
 * include/uapi/linux/vmir.h, struct vmir_map_hdr).
 *
 * Like dm-clone and dm-thin commit their metadata on FLUSH, a FLUSH or a
 * FUA write that finds the maps changed since the last copy writes a new
 * copy: the maps are copied, the mirror's data is synced (the chunks the
 * copy calls present or dirty are on disk before the copy is), then the
 * copy goes to the slot not holding the newest one and is synced. A crash
 * while the slot is written leaves a copy whose crc fails and the other
 * slot, one generation older, intact. A FLUSH that finds nothing changed
 * costs what it did before: one fsync of the mirror.
 *
 * Everything here runs under dev->map_lock, in contexts that may do
 * mirror I/O (the request's, or a control command's).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/crc32.h>
#include <linux/fs.h>
#include <linux/slab.h>

#include "vmir_chunk.h"
#include "vmir_dev.h"

/**
 * vmir_map_init - keep the durable map of @dev at @offset of the mirror
 * @dev: a device being created (SETUP)
 * @offset: 0 for none; else a multiple of 4096 at or past the image end
 * @generation: the generation userspace wrote last (0: none)
 */
int vmir_map_init(struct vmir_device *dev, u64 offset, u64 generation)
{
	u32 nchunks = vmir_chunks_count(dev->chunks);

	mutex_init(&dev->map_lock);
	if (!offset)
		return 0;
	dev->map_slot = VMIR_MAP_SLOT_BYTES(nchunks);
	dev->map_buf = kvzalloc(dev->map_slot, GFP_KERNEL);
	if (!dev->map_buf)
		return -ENOMEM;
	dev->map_offset = offset;
	dev->map_gen = generation;
	/* what userspace wrote is the state the device starts from */
	dev->map_changes = vmir_chunks_changes(dev->chunks);
	return 0;
}

void vmir_map_free(struct vmir_device *dev)
{
	kvfree(dev->map_buf);
	dev->map_buf = NULL;
}

/* Does a FLUSH or FUA write need a new copy? (A hint: read unlocked.) */
bool vmir_map_stale(struct vmir_device *dev)
{
	return dev->map_offset &&
	       READ_ONCE(dev->map_changes) != vmir_chunks_changes(dev->chunks);
}

/* Fill the header of the copy in dev->map_buf; the bitmaps are in place. */
static void vmir_map_seal(struct vmir_device *dev, u64 generation)
{
	struct vmir_map_hdr *h = dev->map_buf;
	u32 nchunks = vmir_chunks_count(dev->chunks);
	u64 mb = VMIR_MAP_BYTES(nchunks);
	u32 crc;

	memset(h, 0, sizeof(*h));
	h->magic = cpu_to_le64(VMIR_MAP_MAGIC);
	h->format = cpu_to_le32(VMIR_MAP_FORMAT);
	h->hdr_len = cpu_to_le32(sizeof(*h));
	h->generation = cpu_to_le64(generation);
	h->size = cpu_to_le64(vmir_chunks_size(dev->chunks));
	h->chunk_size = cpu_to_le32(vmir_chunks_chunk_size(dev->chunks));
	h->nchunks = cpu_to_le32(nchunks);
	h->map_bytes = cpu_to_le32(mb);
	spin_lock(&dev->name_lock);
	h->version = cpu_to_le32(dev->version);
	strscpy(h->image, dev->image, sizeof(h->image));
	spin_unlock(&dev->name_lock);
	/* the CRC-32 of zlib: inverted in and out */
	crc = crc32_le(~0U, (const u8 *)h, sizeof(*h) + 2 * mb);
	h->crc = cpu_to_le32(~crc);
}

/**
 * vmir_map_commit - make the mirror's data and the maps durable
 * @dev: the device
 * @force: write a copy even when the maps did not change (COMMIT_END:
 *	the version changed)
 *
 * Without a durable map this is an fsync of the mirror. Returns 0 or
 * -errno; on failure the next call writes the copy again.
 */
int vmir_map_commit(struct vmir_device *dev, bool force)
{
	u32 nchunks = vmir_chunks_count(dev->chunks);
	u64 mb = VMIR_MAP_BYTES(nchunks), gen;
	struct vmir_map_hdr *h = dev->map_buf;
	u8 *present = (u8 *)(h + 1);
	loff_t pos;
	ssize_t n;
	u32 changes;
	int ret;

	if (!dev->map_offset)
		return vfs_fsync(dev->mirror, 0);
	mutex_lock(&dev->map_lock);
	if (!force && dev->map_changes == vmir_chunks_changes(dev->chunks)) {
		mutex_unlock(&dev->map_lock);
		return vfs_fsync(dev->mirror, 0);
	}
	changes = vmir_chunks_map_copy(dev->chunks, present, present + mb);
	/* the chunks the copy calls valid reach the disk before it does */
	ret = vfs_fsync(dev->mirror, 0);
	if (ret)
		goto out_unlock;
	gen = dev->map_gen + 1;
	vmir_map_seal(dev, gen);
	pos = dev->map_offset + (gen & 1) * dev->map_slot;
	n = kernel_write(dev->mirror, dev->map_buf, dev->map_slot, &pos);
	if (n != dev->map_slot) {
		ret = n < 0 ? n : -EIO;
		goto out_unlock;
	}
	ret = vfs_fsync_range(dev->mirror, pos - dev->map_slot, pos - 1, 1);
	if (ret)
		goto out_unlock;
	dev->map_gen = gen;
	WRITE_ONCE(dev->map_changes, changes);
	dev->map_commits++;
out_unlock:
	mutex_unlock(&dev->map_lock);
	if (ret)
		pr_err_ratelimited("vmir%u: writing the durable map failed: %d\n",
				   dev->id, ret);
	return ret;
}
