// SPDX-License-Identifier: GPL-2.0
/*
 * vmir: lazily fetched, snapshot-able block devices backed by a mirror
 * file, with misses answered by a userspace helper over generic netlink.
 *
 * This file: module init/exit, the device registry and device lifetime.
 *
 * The registry maps a device id (the N of /dev/vmirN) to its device. An
 * id is reserved (NULL entry) while its device is being added and while
 * it is being removed, so a new device never reuses the name of a disk
 * that is still going away. Lookups take a reference; the registry holds
 * one of its own until REMOVE_DEVICE (or module exit) has torn the device
 * down. The memory goes with the last reference.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "vmir_chunk.h"
#include "vmir_dev.h"

/* The registry, dev->lifetime and dev->net (see vmir.h). */
DEFINE_MUTEX(vmir_lock);
static DEFINE_IDR(vmir_idr);		/* id -> device or NULL, vmir_lock */
int vmir_major;

/*
 * Global, read-only knobs only; everything per device comes through
 * ADD_DEVICE (loop.c explains why global settings are a mistake).
 */
unsigned int vmir_queue_depth = 128;
module_param_named(queue_depth, vmir_queue_depth, uint, 0444);
MODULE_PARM_DESC(queue_depth,
		 "Requests per hardware queue of every device (default 128)");

/**
 * vmir_dev_get - look up a device of @net and take a reference
 * @net: namespace of the caller; devices of other namespaces do not exist
 * @id: device id
 *
 * Returns the device or NULL (unknown, other namespace, being removed).
 */
struct vmir_device *vmir_dev_get(struct net *net, u32 id)
{
	struct vmir_device *dev;

	mutex_lock(&vmir_lock);
	dev = idr_find(&vmir_idr, id);
	if (dev && (!net_eq(dev->net, net) ||
		    dev->lifetime == VMIR_LIFE_REMOVING))
		dev = NULL;
	if (dev)
		refcount_inc(&dev->refs);
	mutex_unlock(&vmir_lock);
	return dev;
}

static void vmir_dev_free(struct vmir_device *dev)
{
	vmir_chunks_destroy(dev->chunks);
	kfree(dev);
}

void vmir_dev_put(struct vmir_device *dev)
{
	if (refcount_dec_and_test(&dev->refs))
		vmir_dev_free(dev);
}

/**
 * vmir_dev_create - allocate a device in SETUP, not yet in the registry
 * @p: validated parameters
 *
 * On success the device owns p->mirror's reference; on failure the
 * caller still does. Publish with vmir_dev_publish(), or release with
 * vmir_dev_abort().
 */
struct vmir_device *vmir_dev_create(const struct vmir_add_params *p)
{
	struct vmir_device *dev;
	int ret;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev) {
		ret = -ENOMEM;
		goto out;
	}
	refcount_set(&dev->refs, 1);
	dev->lifetime = VMIR_LIFE_SETUP;
	dev->net = p->net;
	dev->add_flags = p->flags;
	dev->timeout_ms = p->timeout_ms;
	mutex_init(&dev->ctl_lock);
	spin_lock_init(&dev->name_lock);
	strscpy(dev->image, p->image, sizeof(dev->image));
	strscpy(dev->version, p->version, sizeof(dev->version));

	mutex_lock(&vmir_lock);
	ret = idr_alloc(&vmir_idr, NULL, 0, VMIR_MAX_DEVICES, GFP_KERNEL);
	mutex_unlock(&vmir_lock);
	if (ret < 0)
		goto out_free_dev;
	dev->id = ret;

	dev->wq = alloc_workqueue("vmir%d", WQ_MEM_RECLAIM, 0, dev->id);
	if (!dev->wq) {
		ret = -ENOMEM;
		goto out_free_id;
	}
	dev->chunks = vmir_chunks_create(dev, p->size, p->chunk_size);
	if (!dev->chunks) {
		ret = -ENOMEM;
		goto out_destroy_wq;
	}
	ret = vmir_blk_init_disk(dev);
	if (ret)
		goto out_destroy_chunks;
	dev->mirror = p->mirror;
	return dev;

out_destroy_chunks:
	vmir_chunks_destroy(dev->chunks);
out_destroy_wq:
	destroy_workqueue(dev->wq);
out_free_id:
	mutex_lock(&vmir_lock);
	idr_remove(&vmir_idr, dev->id);
	mutex_unlock(&vmir_lock);
out_free_dev:
	kfree(dev);
out:
	return ERR_PTR(ret);
}

/* Make a created device visible to lookups. */
void vmir_dev_publish(struct vmir_device *dev)
{
	mutex_lock(&vmir_lock);
	WARN_ON_ONCE(idr_replace(&vmir_idr, dev, dev->id));
	mutex_unlock(&vmir_lock);
}

/**
 * vmir_dev_start - add the disk: SETUP -> LIVE
 * @dev: the device; the caller holds dev->ctl_lock
 *
 * Returns 0, -EBUSY if already started, -ENODEV if being removed, or
 * add_disk()'s error (the device then stays in SETUP, without a disk).
 */
int vmir_dev_start(struct vmir_device *dev)
{
	bool removing;
	int ret;

	lockdep_assert_held(&dev->ctl_lock);
	if (dev->disk_added || dev->stopped)
		return -EBUSY;
	mutex_lock(&vmir_lock);
	removing = dev->lifetime == VMIR_LIFE_REMOVING;
	mutex_unlock(&vmir_lock);
	if (removing)
		return -ENODEV;

	ret = add_disk(dev->disk);
	if (ret)
		return ret;
	dev->disk_added = true;

	mutex_lock(&vmir_lock);
	if (dev->lifetime == VMIR_LIFE_SETUP)
		dev->lifetime = VMIR_LIFE_LIVE;
	mutex_unlock(&vmir_lock);
	return 0;
}

/* Fail parked requests, then delete the disk once the rest completed. */
static void vmir_dev_quiesce(struct vmir_device *dev)
{
	lockdep_assert_held(&dev->ctl_lock);
	vmir_chunks_shutdown(dev->chunks);
	if (dev->disk_added)
		del_gendisk(dev->disk);
	dev->disk_added = false;
}

/*
 * Release everything but the memory. The device is out of the registry
 * (its id maps to NULL); requests may still be in flight. Parked ones fail
 * first, so that del_gendisk() can drain the queue.
 */
static void vmir_dev_teardown(struct vmir_device *dev)
{
	mutex_lock(&dev->ctl_lock);
	vmir_dev_quiesce(dev);
	mutex_unlock(&dev->ctl_lock);

	/* No request is left: nothing queues work any more. */
	destroy_workqueue(dev->wq);
	dev->wq = NULL;
	vmir_blk_free_disk(dev);
	fput(dev->mirror);
	dev->mirror = NULL;

	mutex_lock(&vmir_lock);
	idr_remove(&vmir_idr, dev->id);
	mutex_unlock(&vmir_lock);
}

/**
 * vmir_dev_stop - STOP_DEVICE: SETUP or LIVE -> STOPPED
 * @dev: a device the caller holds a reference on
 *
 * Like the first half of REMOVE_DEVICE: parked requests fail with EIO,
 * the others complete, the disk goes away. The device and its chunk state
 * stay in the registry, final, so that GET_STATE reports every write that
 * completed. Returns 0, -EALREADY if stopped, -ENODEV if being removed.
 */
int vmir_dev_stop(struct vmir_device *dev)
{
	int ret = 0;

	mutex_lock(&dev->ctl_lock);
	mutex_lock(&vmir_lock);
	if (dev->lifetime == VMIR_LIFE_REMOVING)
		ret = -ENODEV;
	else if (dev->stopped)
		ret = -EALREADY;
	mutex_unlock(&vmir_lock);
	if (ret)
		goto out_unlock;

	dev->stopped = true;
	vmir_dev_quiesce(dev);
	mutex_lock(&vmir_lock);
	if (dev->lifetime != VMIR_LIFE_REMOVING)
		dev->lifetime = VMIR_LIFE_STOPPED;
	mutex_unlock(&vmir_lock);
out_unlock:
	mutex_unlock(&dev->ctl_lock);
	return ret;
}

/* Undo vmir_dev_create() of a device that was never published. */
void vmir_dev_abort(struct vmir_device *dev)
{
	mutex_lock(&vmir_lock);
	dev->lifetime = VMIR_LIFE_REMOVING;
	mutex_unlock(&vmir_lock);
	vmir_dev_teardown(dev);
	vmir_dev_put(dev);
}

/**
 * vmir_dev_remove - REMOVE_DEVICE
 * @dev: a device the caller holds a reference on
 *
 * Safe with I/O in flight and the disk open: parked requests fail with
 * EIO, the others complete, then the disk goes away. Returns 0, or
 * -ENODEV when another remover got there first.
 */
int vmir_dev_remove(struct vmir_device *dev)
{
	mutex_lock(&vmir_lock);
	if (dev->lifetime == VMIR_LIFE_REMOVING) {
		mutex_unlock(&vmir_lock);
		return -ENODEV;
	}
	dev->lifetime = VMIR_LIFE_REMOVING;
	idr_replace(&vmir_idr, NULL, dev->id);
	mutex_unlock(&vmir_lock);

	vmir_dev_teardown(dev);
	vmir_dev_put(dev);		/* the registry's reference */
	return 0;
}

/* A helper registered in @net: send it every outstanding event. */
void vmir_kick_net(struct net *net)
{
	struct vmir_device *dev;
	int id;

	mutex_lock(&vmir_lock);
	idr_for_each_entry(&vmir_idr, dev, id)
		if (net_eq(dev->net, net))
			vmir_chunks_resend(dev->chunks);
	mutex_unlock(&vmir_lock);
}

/**
 * vmir_dev_get_next - the next device of @net at or after id *@pos
 * @net: namespace of the caller
 * @pos: id to start from; set to the id of the device returned
 *
 * Returns the device with a reference taken, or NULL when there is none.
 */
struct vmir_device *vmir_dev_get_next(struct net *net, int *pos)
{
	struct vmir_device *dev;

	mutex_lock(&vmir_lock);
	for (; (dev = idr_get_next(&vmir_idr, pos)); (*pos)++) {
		if (net_eq(dev->net, net)) {
			refcount_inc(&dev->refs);
			break;
		}
	}
	mutex_unlock(&vmir_lock);
	return dev;
}

/*
 * A network namespace is going away with devices still in it: they move
 * to the initial namespace, parked requests and all, where a helper (or
 * an administrator) can still reach them.
 */
static void __net_exit vmir_net_exit(struct net *net)
{
	struct vmir_device *dev;
	bool moved = false;
	int id;

	mutex_lock(&vmir_lock);
	idr_for_each_entry(&vmir_idr, dev, id) {
		if (!net_eq(dev->net, net))
			continue;
		vmir_dev_set_net(dev, &init_net);
		pr_info("vmir%d: its network namespace went away; it now belongs to the initial one\n",
			dev->id);
		moved = true;
	}
	mutex_unlock(&vmir_lock);
	vmir_helpers_forget_net(net);
	if (moved)
		vmir_kick_net(&init_net);
}

static struct pernet_operations vmir_net_ops = {
	.exit = vmir_net_exit,
};

/* Module exit: no genl handler runs any more; remove every device. */
static void vmir_remove_all(void)
{
	struct vmir_device *dev;
	int id;

	for (;;) {
		id = 0;
		mutex_lock(&vmir_lock);
		dev = idr_get_next(&vmir_idr, &id);
		if (dev) {
			dev->lifetime = VMIR_LIFE_REMOVING;
			idr_replace(&vmir_idr, NULL, dev->id);
		}
		mutex_unlock(&vmir_lock);
		if (!dev)
			break;
		vmir_dev_teardown(dev);
		vmir_dev_put(dev);
	}
	WARN_ON_ONCE(!idr_is_empty(&vmir_idr));
	idr_destroy(&vmir_idr);
}

static int __init vmir_init(void)
{
	int ret;

	if (!vmir_queue_depth || vmir_queue_depth > BLK_MQ_MAX_DEPTH) {
		pr_err("queue_depth=%u is out of range 1..%u\n",
		       vmir_queue_depth, BLK_MQ_MAX_DEPTH);
		ret = -EINVAL;
		goto out;
	}
	ret = register_blkdev(0, "vmir");
	if (ret < 0)
		goto out;
	vmir_major = ret;
	ret = register_pernet_subsys(&vmir_net_ops);
	if (ret)
		goto out_unregister_blkdev;
	ret = vmir_genl_init();
	if (ret)
		goto out_unregister_pernet;
	pr_info("ready: block major %d, generic netlink family \"%s\"\n",
		vmir_major, VMIR_GENL_NAME);
	return 0;

out_unregister_pernet:
	unregister_pernet_subsys(&vmir_net_ops);
out_unregister_blkdev:
	unregister_blkdev(vmir_major, "vmir");
out:
	return ret;
}

static void __exit vmir_exit(void)
{
	vmir_genl_exit();
	vmir_remove_all();
	unregister_pernet_subsys(&vmir_net_ops);
	unregister_blkdev(vmir_major, "vmir");
}

module_init(vmir_init);
module_exit(vmir_exit);
MODULE_DESCRIPTION("vmir lazily fetched block devices over a mirror file");
MODULE_LICENSE("GPL");
