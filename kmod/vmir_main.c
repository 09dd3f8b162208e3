// SPDX-License-Identifier: GPL-2.0
/*
 * vmir: lazily fetched, snapshot-able block devices backed by a mirror
 * file, with misses answered by a userspace helper over generic netlink.
 *
 * This file: module init/exit, the device registry and device lifetime.
 *
 * The registry maps a device id (the N of /dev/vmirN) to its device. An
 * id is reserved (an entry lookups see as NULL) while its device is being
 * added and while it is being removed, so a new device never reuses the
 * name of a disk that is still going away. Lookups run under RCU and take
 * a reference (see vmir_dev.h); the registry holds one of its own until
 * REMOVE_DEVICE (or module exit) has torn the device down. The memory
 * goes a grace period after the last reference.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/xarray.h>

#include "vmir_chunk.h"
#include "vmir_dev.h"

/* id -> device; a reserved id (adding, removing) loads as NULL. */
static DEFINE_XARRAY_ALLOC(vmir_devs);
int vmir_major;

/*
 * Global, read-only knobs only; everything per device comes through
 * ADD_DEVICE (loop.c explains why global settings are a mistake).
 */
unsigned int vmir_queue_depth = 128;
module_param_named(queue_depth, vmir_queue_depth, uint, 0444);
MODULE_PARM_DESC(queue_depth,
		 "Requests per hardware queue of every device (default 128)");

/*
 * A device found under RCU is still allocated; it is ours once the
 * reference is taken. The owner's namespace is checked first, so that a
 * device of another namespace is never referenced (and never put) here.
 */
static bool vmir_dev_tryget(struct vmir_device *dev, struct net *net)
{
	return net_eq(READ_ONCE(dev->net), net) &&
	       refcount_inc_not_zero(&dev->refs);
}

/**
 * vmir_dev_get - look up a device of @net and take a reference
 * @net: namespace of the caller; devices of other namespaces do not exist
 * @id: device id
 *
 * Takes no lock. Returns the device or NULL (unknown, other namespace,
 * being added or removed).
 */
struct vmir_device *vmir_dev_get(struct net *net, u32 id)
{
	struct vmir_device *dev;

	rcu_read_lock();
	dev = xa_load(&vmir_devs, id);
	if (dev && !vmir_dev_tryget(dev, net))
		dev = NULL;
	rcu_read_unlock();
	return dev;
}

/**
 * vmir_dev_get_next - the next device of @net at or after id *@pos
 * @net: namespace of the caller
 * @pos: id to start from; set to the id of the device returned
 *
 * Returns the device with a reference taken, or NULL when there is none.
 */
struct vmir_device *vmir_dev_get_next(struct net *net, unsigned long *pos)
{
	struct vmir_device *dev;

	rcu_read_lock();
	xa_for_each_start(&vmir_devs, *pos, dev, *pos)
		if (vmir_dev_tryget(dev, net))
			break;
	rcu_read_unlock();
	return dev;
}

void vmir_dev_put(struct vmir_device *dev)
{
	if (!refcount_dec_and_test(&dev->refs))
		return;
	vmir_map_free(dev);
	vmir_chunks_destroy(dev->chunks);
	free_percpu(dev->served);
	/* A lookup may still read refs and net: free after it. */
	kfree_rcu(dev, rcu);
}

/* dev->state changes under ctl_lock; reports read it without. */
static void vmir_dev_set_state(struct vmir_device *dev,
			       enum vmir_lifetime state)
{
	lockdep_assert_held(&dev->ctl_lock);
	WRITE_ONCE(dev->state, state);
}

/**
 * vmir_dev_create - allocate a device in SETUP, not yet visible
 * @p: validated parameters
 *
 * The id is reserved. On success the device owns p->mirror's reference;
 * on failure the caller still does. Publish with vmir_dev_publish(), or
 * release with vmir_dev_remove().
 */
struct vmir_device *vmir_dev_create(const struct vmir_add_params *p)
{
	struct vmir_device *dev;
	u32 id;
	int ret;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev) {
		ret = -ENOMEM;
		goto out;
	}
	refcount_set(&dev->refs, 1);
	mutex_init(&dev->ctl_lock);
	dev->state = VMIR_LIFE_SETUP;
	dev->net = p->net;
	dev->add_flags = p->flags;
	dev->timeout_ms = p->timeout_ms;
	spin_lock_init(&dev->name_lock);
	strscpy(dev->image, p->image, sizeof(dev->image));
	dev->version = p->version;

	ret = xa_alloc(&vmir_devs, &id, NULL,
		       XA_LIMIT(0, VMIR_MAX_DEVICES - 1), GFP_KERNEL);
	if (ret) {
		if (ret == -EBUSY)
			ret = -ENOSPC;
		goto out_free_dev;
	}
	dev->id = id;

	dev->served = alloc_percpu(struct vmir_served);
	if (!dev->served) {
		ret = -ENOMEM;
		goto out_free_id;
	}
	spin_lock_init(&dev->queue_lock);
	INIT_LIST_HEAD(&dev->queue);
	INIT_WORK(&dev->queue_work, vmir_dispatch_work);
	dev->wq = alloc_workqueue("vmir%d", WQ_UNBOUND | WQ_MEM_RECLAIM, 0,
				  dev->id);
	if (!dev->wq) {
		ret = -ENOMEM;
		goto out_free_served;
	}
	dev->chunks = vmir_chunks_create(dev, p->size, p->chunk_size);
	if (!dev->chunks) {
		ret = -ENOMEM;
		goto out_destroy_wq;
	}
	ret = vmir_map_init(dev, p->map_offset, p->map_gen);
	if (ret)
		goto out_destroy_chunks;
	ret = vmir_blk_init_disk(dev);
	if (ret)
		goto out_free_map;
	/*
	 * Reading the mirror must not dirty its inode: an atime update would
	 * start a journal handle (and I/O) in contexts that may not have
	 * one, such as a read served from the page cache inside a bio
	 * submission (vmir_blk.c).
	 */
	spin_lock(&p->mirror->f_lock);
	p->mirror->f_flags |= O_NOATIME;
	spin_unlock(&p->mirror->f_lock);
	dev->mirror = p->mirror;
	return dev;

out_free_map:
	vmir_map_free(dev);
out_destroy_chunks:
	vmir_chunks_destroy(dev->chunks);
out_destroy_wq:
	destroy_workqueue(dev->wq);
out_free_served:
	free_percpu(dev->served);
out_free_id:
	xa_erase(&vmir_devs, dev->id);
out_free_dev:
	kfree(dev);
out:
	return ERR_PTR(ret);
}

/* Make a created device visible to lookups. */
void vmir_dev_publish(struct vmir_device *dev)
{
	/* The id is reserved: the slot exists, nothing is allocated. */
	WARN_ON_ONCE(xa_is_err(xa_store(&vmir_devs, dev->id, dev,
					GFP_KERNEL)));
}

/**
 * vmir_dev_start - add the disk: SETUP -> LIVE
 * @dev: the device; the caller holds dev->ctl_lock
 *
 * Returns 0, -EBUSY if already started or stopped, -ENODEV if being
 * removed, or add_disk()'s error (the device then stays in SETUP).
 */
int vmir_dev_start(struct vmir_device *dev)
{
	int ret;

	lockdep_assert_held(&dev->ctl_lock);
	if (dev->state == VMIR_LIFE_REMOVING)
		return -ENODEV;
	if (dev->state != VMIR_LIFE_SETUP)
		return -EBUSY;
	/* userspace wrote the maps it restored as the durable map */
	WRITE_ONCE(dev->map_changes, vmir_chunks_changes(dev->chunks));
	ret = add_disk(dev->disk);
	if (ret)
		return ret;
	vmir_dev_set_state(dev, VMIR_LIFE_LIVE);
	return 0;
}

/*
 * Fail parked requests, then delete the disk once the rest completed.
 * @was: the state before the caller changed it.
 */
static void vmir_dev_quiesce(struct vmir_device *dev, enum vmir_lifetime was)
{
	lockdep_assert_held(&dev->ctl_lock);
	vmir_chunks_shutdown(dev->chunks);
	if (was == VMIR_LIFE_LIVE)
		del_gendisk(dev->disk);
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
	if (dev->state == VMIR_LIFE_REMOVING) {
		ret = -ENODEV;
	} else if (dev->state == VMIR_LIFE_STOPPED) {
		ret = -EALREADY;
	} else {
		vmir_dev_quiesce(dev, dev->state);
		vmir_dev_set_state(dev, VMIR_LIFE_STOPPED);
		/* the final maps on disk, beside the state userspace saves */
		vmir_map_commit(dev, false);
	}
	mutex_unlock(&dev->ctl_lock);
	return ret;
}

/**
 * vmir_dev_remove - REMOVE_DEVICE, or undo an ADD_DEVICE that failed
 * @dev: a device the caller holds a reference on
 *
 * Safe with I/O in flight and the disk open: parked requests fail with
 * EIO, the others complete, then the disk goes away. The registry's
 * reference is dropped. Returns 0, or -ENODEV when another remover got
 * there first.
 */
int vmir_dev_remove(struct vmir_device *dev)
{
	enum vmir_lifetime was;

	mutex_lock(&dev->ctl_lock);
	was = dev->state;
	if (was == VMIR_LIFE_REMOVING) {
		mutex_unlock(&dev->ctl_lock);
		return -ENODEV;
	}
	vmir_dev_set_state(dev, VMIR_LIFE_REMOVING);
	/* Lookups fail from here on; the id stays reserved (no allocation). */
	xa_store(&vmir_devs, dev->id, NULL, GFP_KERNEL);
	vmir_dev_quiesce(dev, was);
	mutex_unlock(&dev->ctl_lock);

	/* No request is left: nothing queues work any more. */
	destroy_workqueue(dev->wq);
	dev->wq = NULL;
	vmir_blk_free_disk(dev);
	fput(dev->mirror);
	dev->mirror = NULL;
	xa_erase(&vmir_devs, dev->id);
	vmir_dev_put(dev);		/* the registry's reference */
	return 0;
}

/* A helper registered in @net: send it every outstanding event. */
void vmir_kick_net(struct net *net)
{
	struct vmir_device *dev;
	unsigned long pos = 0;

	for (; (dev = vmir_dev_get_next(net, &pos)); pos++) {
		vmir_chunks_resend(dev->chunks);
		vmir_dev_put(dev);
	}
}

/*
 * A network namespace is going away with devices still in it: they move
 * to the initial namespace, parked requests and all, where a helper (or
 * an administrator) can still reach them. No socket of @net exists any
 * more, so no device is added to it meanwhile.
 */
static void __net_exit vmir_net_exit(struct net *net)
{
	struct vmir_device *dev;
	unsigned long pos = 0;
	bool moved = false;

	for (; (dev = vmir_dev_get_next(net, &pos)); pos++) {
		vmir_dev_set_net(dev, &init_net);
		pr_info("vmir%d: its network namespace went away; it now belongs to the initial one\n",
			dev->id);
		moved = true;
		vmir_dev_put(dev);
	}
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
	unsigned long id;

	/* The registry's reference keeps each device until its removal. */
	xa_for_each(&vmir_devs, id, dev)
		vmir_dev_remove(dev);
	WARN_ON_ONCE(!xa_empty(&vmir_devs));
	xa_destroy(&vmir_devs);
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
MODULE_VERSION(VMIR_VERSION);
