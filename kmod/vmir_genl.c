// SPDX-License-Identifier: GPL-2.0
/*
 * vmir: the generic netlink family "vmir" and the helper registry.
 *
 * The protocol is documented in include/uapi/linux/vmir.h. The family's
 * pre_doit checks CAP_SYS_ADMIN first (GENL_ADMIN_PERM only asks for
 * CAP_NET_ADMIN), then, for the commands whose internal_flags ask for it,
 * looks the device up and takes a reference (user_ptr[0], dropped by
 * post_doit) and checks the chunk index; the handler checks the rest. The
 * family is netns aware: devices and helpers are matched by the namespace
 * of the socket.
 *
 * At most one helper per namespace: the socket that sent HELPER_REGISTER.
 * Events go to it by unicast; when its socket is released
 * (NETLINK_URELEASE) it is forgotten and events wait for the next one.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/log2.h>
#include <linux/netlink.h>
#include <linux/notifier.h>
#include <linux/slab.h>
#include <net/genetlink.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "vmir_chunk.h"
#include "vmir_compat.h"
#include "vmir_dev.h"

struct vmir_helper {
	struct list_head node;		/* in vmir_helpers */
	struct net *net;		/* no reference: the helper's socket */
	u32 portid;			/* keeps it alive until URELEASE */
};

/*
 * Protects vmir_helpers and dev->net (lookups read that with READ_ONCE).
 * A spinlock: the netlink notifier may run in atomic context.
 */
static DEFINE_SPINLOCK(vmir_helper_lock);
static LIST_HEAD(vmir_helpers);

static struct genl_family vmir_genl_family;

static struct vmir_helper *vmir_helper_find(struct net *net)
{
	struct vmir_helper *h;

	lockdep_assert_held(&vmir_helper_lock);
	list_for_each_entry(h, &vmir_helpers, node)
		if (net_eq(h->net, net))
			return h;
	return NULL;
}

static bool vmir_helper_present(struct vmir_device *dev)
{
	bool ret;

	spin_lock(&vmir_helper_lock);
	ret = vmir_helper_find(dev->net);
	spin_unlock(&vmir_helper_lock);
	return ret;
}

void vmir_dev_set_net(struct vmir_device *dev, struct net *net)
{
	spin_lock(&vmir_helper_lock);
	WRITE_ONCE(dev->net, net);
	spin_unlock(&vmir_helper_lock);
}

void vmir_helpers_forget_net(struct net *net)
{
	struct vmir_helper *h;

	spin_lock(&vmir_helper_lock);
	h = vmir_helper_find(net);
	if (h)
		list_del(&h->node);
	spin_unlock(&vmir_helper_lock);
	kfree(h);
}

static int vmir_netlink_notify(struct notifier_block *nb,
			       unsigned long event, void *ptr)
{
	struct netlink_notify *n = ptr;
	struct vmir_helper *h;

	if (event != NETLINK_URELEASE || n->protocol != NETLINK_GENERIC)
		return NOTIFY_DONE;
	spin_lock(&vmir_helper_lock);
	h = vmir_helper_find(n->net);
	if (h && h->portid == n->portid)
		list_del(&h->node);
	else
		h = NULL;
	spin_unlock(&vmir_helper_lock);
	if (h) {
		pr_info("helper (netlink port %u) closed its socket; requests wait for the next helper\n",
			h->portid);
		kfree(h);
	}
	return NOTIFY_DONE;
}

static struct notifier_block vmir_netlink_notifier = {
	.notifier_call = vmir_netlink_notify,
};

/**
 * vmir_genl_send_event - unicast MISS or CAPTURE_NEEDED to the helper
 * @dev: the device
 * @cmd: VMIR_CMD_MISS or VMIR_CMD_CAPTURE_NEEDED
 * @chunks: chunk indexes, one message for all of them
 * @n: how many, 1..VMIR_CHUNKS_MAX
 *
 * Returns 0 when queued on the helper's socket, -ENOTCONN without a
 * helper, else the delivery error (-EAGAIN: its receive buffer is full).
 */
int vmir_genl_send_event(struct vmir_device *dev, u8 cmd, const u32 *chunks,
			 u32 n)
{
	struct net *net = NULL;
	struct vmir_helper *h;
	struct sk_buff *skb;
	u32 portid = 0;
	void *hdr;
	int ret;

	skb = genlmsg_new(nla_total_size(sizeof(u32)) +
			  nla_total_size(n * sizeof(u32)), GFP_NOIO);
	if (!skb)
		return -ENOMEM;
	hdr = genlmsg_put(skb, 0, 0, &vmir_genl_family, 0, cmd);
	if (!hdr || nla_put_u32(skb, VMIR_ATTR_DEV_ID, dev->id) ||
	    nla_put(skb, VMIR_ATTR_CHUNKS, n * sizeof(u32), chunks)) {
		ret = -EMSGSIZE;
		goto out_free;
	}
	genlmsg_end(skb, hdr);

	spin_lock(&vmir_helper_lock);
	h = vmir_helper_find(dev->net);
	if (h) {
		portid = h->portid;
		net = maybe_get_net(h->net);
	}
	spin_unlock(&vmir_helper_lock);
	if (!net) {
		ret = -ENOTCONN;
		goto out_free;
	}
	ret = genlmsg_unicast(net, skb, portid);
	put_net(net);
	return ret;

out_free:
	nlmsg_free(skb);
	return ret;
}

static bool vmir_genl_capable(const struct sk_buff *skb)
{
	return netlink_capable(skb, CAP_SYS_ADMIN);
}

/* The device @a names in @net, referenced; ERR_PTR(-ENODEV) otherwise. */
static struct vmir_device *vmir_genl_lookup(struct net *net, struct nlattr *a,
					    struct netlink_ext_ack *extack)
{
	struct vmir_device *dev;

	dev = vmir_dev_get(net, nla_get_u32(a));
	if (!dev) {
		NL_SET_ERR_MSG_ATTR(extack, a,
				    "no such vmir device in this network namespace");
		return ERR_PTR(-ENODEV);
	}
	return dev;
}

/*
 * What a command needs before its handler runs, in ops->internal_flags
 * (as nl80211 does it). Every command needs CAP_SYS_ADMIN.
 */
#define VMIR_GENL_DEV	BIT(0)	/* DEV_ID's device, referenced: user_ptr[0] */
#define VMIR_GENL_CHUNKS BIT(1)	/* CHUNKS, each below the chunk count */

/*
 * A request's chunk list: 1..VMIR_CHUNKS_MAX indexes (the policy bounds
 * the length), every one below the device's chunk count, or nothing of
 * the request happens.
 */
static int vmir_genl_check_chunks(struct genl_info *info,
				  struct vmir_device *dev)
{
	struct nlattr *a = info->attrs[VMIR_ATTR_CHUNKS];
	u32 nchunks = vmir_chunks_count(dev->chunks);
	const u32 *chunks;
	int i, n;

	if (GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_CHUNKS))
		return -EINVAL;
	if (!nla_len(a) || nla_len(a) % sizeof(u32)) {
		NL_SET_ERR_MSG_ATTR(info->extack, a,
				    "CHUNKS must hold 1 to VMIR_CHUNKS_MAX u32 chunk indexes");
		return -EINVAL;
	}
	chunks = nla_data(a);
	n = nla_len(a) / sizeof(u32);
	for (i = 0; i < n; i++) {
		if (chunks[i] >= nchunks) {
			NL_SET_ERR_MSG_ATTR(info->extack, a,
					    "a chunk index is not below the device's chunk count");
			return -ERANGE;
		}
	}
	return 0;
}

static int vmir_genl_pre_doit(const struct vmir_compat_genl_ops *ops,
			      struct sk_buff *skb, struct genl_info *info)
{
	struct vmir_device *dev;
	int ret;

	if (!vmir_genl_capable(skb))
		return -EPERM;
	if (!(ops->internal_flags & VMIR_GENL_DEV))
		return 0;
	if (GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_DEV_ID))
		return -EINVAL;
	dev = vmir_genl_lookup(genl_info_net(info),
			       info->attrs[VMIR_ATTR_DEV_ID], info->extack);
	if (IS_ERR(dev))
		return PTR_ERR(dev);
	if (ops->internal_flags & VMIR_GENL_CHUNKS) {
		ret = vmir_genl_check_chunks(info, dev);
		if (ret) {
			vmir_dev_put(dev);
			return ret;
		}
	}
	info->user_ptr[0] = dev;
	return 0;
}

/* Runs after every handler that pre_doit let through. */
static void vmir_genl_post_doit(const struct vmir_compat_genl_ops *ops,
				struct sk_buff *skb, struct genl_info *info)
{
	struct vmir_device *dev = info->user_ptr[0];

	if (dev)
		vmir_dev_put(dev);
}

/* A bitmap segment of ADD_DEVICE or SET_STATE, validated. */
struct vmir_segment {
	u32 start;
	u32 len;			/* 0: none */
	const u8 *present;
	const u8 *dirty;		/* NULL: all clean */
};

static int vmir_genl_segment(struct genl_info *info, u32 nchunks,
			     struct vmir_segment *seg)
{
	struct nlattr **a = info->attrs;
	struct nlattr *p = a[VMIR_ATTR_MAP_PRESENT];
	struct nlattr *d = a[VMIR_ATTR_MAP_DIRTY];
	u32 j, max, tail;
	u8 mask;

	memset(seg, 0, sizeof(*seg));
	if (!p) {
		if (d || a[VMIR_ATTR_MAP_START]) {
			NL_SET_ERR_MSG(info->extack,
				       "MAP_START/MAP_DIRTY need MAP_PRESENT (a dirty chunk is present)");
			return -EINVAL;
		}
		return 0;
	}
	if (a[VMIR_ATTR_MAP_START])
		seg->start = nla_get_u32(a[VMIR_ATTR_MAP_START]);
	if (seg->start % 8 || seg->start >= nchunks) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[VMIR_ATTR_MAP_START],
				    "MAP_START must be a multiple of 8 below the chunk count");
		return -EINVAL;
	}
	seg->len = nla_len(p);
	max = DIV_ROUND_UP(nchunks - seg->start, 8);
	if (!seg->len || seg->len > max) {
		NL_SET_ERR_MSG_ATTR(info->extack, p,
				    "MAP_PRESENT is empty or reaches past the last chunk");
		return -EINVAL;
	}
	if (d && nla_len(d) != seg->len) {
		NL_SET_ERR_MSG_ATTR(info->extack, d,
				    "MAP_DIRTY and MAP_PRESENT differ in length");
		return -EINVAL;
	}
	seg->present = nla_data(p);
	seg->dirty = d ? nla_data(d) : NULL;

	tail = (nchunks - seg->start) % 8;
	if (seg->len == max && tail) {
		mask = 0xff << tail;
		if ((seg->present[seg->len - 1] & mask) ||
		    (seg->dirty && (seg->dirty[seg->len - 1] & mask))) {
			NL_SET_ERR_MSG_ATTR(info->extack, p,
					    "bits past the last chunk are set");
			return -EINVAL;
		}
	}
	for (j = 0; seg->dirty && j < seg->len; j++) {
		if (seg->dirty[j] & ~seg->present[j]) {
			NL_SET_ERR_MSG_ATTR(info->extack, d,
					    "a chunk is dirty but not present");
			return -EINVAL;
		}
	}
	return 0;
}

static int vmir_genl_check_mirror(struct genl_info *info, struct file *file)
{
	struct nlattr *a = info->attrs[VMIR_ATTR_MIRROR_FD];

	if (!S_ISREG(file_inode(file)->i_mode)) {
		NL_SET_ERR_MSG_ATTR(info->extack, a,
				    "the mirror is not a regular file");
		return -EINVAL;
	}
	if (!(file->f_mode & FMODE_READ) || !(file->f_mode & FMODE_WRITE)) {
		NL_SET_ERR_MSG_ATTR(info->extack, a,
				    "the mirror must be opened O_RDWR");
		return -EBADF;
	}
	if (file->f_flags & (O_APPEND | O_DIRECT)) {
		NL_SET_ERR_MSG_ATTR(info->extack, a,
				    "the mirror must be opened without O_APPEND and O_DIRECT");
		return -EINVAL;
	}
	if (!file->f_op->read_iter || !file->f_op->write_iter) {
		NL_SET_ERR_MSG_ATTR(info->extack, a,
				    "the mirror's filesystem has no read_iter/write_iter");
		return -EINVAL;
	}
	return 0;
}

static int vmir_genl_helper_register(struct sk_buff *skb,
				     struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct vmir_helper *h, *new;
	u64 flags = 0;

	if (info->attrs[VMIR_ATTR_FLAGS])
		flags = nla_get_u64(info->attrs[VMIR_ATTR_FLAGS]);
	if (flags & ~VMIR_REGISTER_F_ALL) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[VMIR_ATTR_FLAGS],
				    "unknown HELPER_REGISTER flags");
		return -EINVAL;
	}

	new = kzalloc(sizeof(*new), GFP_KERNEL);
	if (!new)
		return -ENOMEM;
	spin_lock(&vmir_helper_lock);
	h = vmir_helper_find(net);
	if (h && h->portid != info->snd_portid &&
	    !(flags & VMIR_REGISTER_F_TAKEOVER)) {
		spin_unlock(&vmir_helper_lock);
		kfree(new);
		NL_SET_ERR_MSG(info->extack,
			       "another helper is registered in this network namespace (VMIR_REGISTER_F_TAKEOVER replaces it)");
		return -EBUSY;
	}
	if (!h) {
		h = new;
		new = NULL;
		h->net = net;
		list_add(&h->node, &vmir_helpers);
	}
	h->portid = info->snd_portid;
	spin_unlock(&vmir_helper_lock);
	kfree(new);

	vmir_kick_net(net);
	return 0;
}

static int vmir_genl_helper_unregister(struct sk_buff *skb,
				       struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct vmir_helper *h;

	spin_lock(&vmir_helper_lock);
	h = vmir_helper_find(net);
	if (h && h->portid == info->snd_portid)
		list_del(&h->node);
	else
		h = NULL;
	spin_unlock(&vmir_helper_lock);
	if (!h) {
		NL_SET_ERR_MSG(info->extack,
			       "this socket is not the registered helper");
		return -ENOENT;
	}
	kfree(h);
	return 0;
}

/* MAP_OFFSET and MAP_GEN of ADD_DEVICE: where the durable map lives. */
static int vmir_genl_map_place(struct genl_info *info,
			       struct vmir_add_params *p, u64 nchunks)
{
	struct nlattr **a = info->attrs;
	u64 off;

	if (!a[VMIR_ATTR_MAP_OFFSET]) {
		if (a[VMIR_ATTR_MAP_GEN]) {
			NL_SET_ERR_MSG_ATTR(info->extack, a[VMIR_ATTR_MAP_GEN],
					    "a map generation needs a map offset");
			return -EINVAL;
		}
		return 0;
	}
	off = nla_get_u64(a[VMIR_ATTR_MAP_OFFSET]);
	if (off % 4096 || off < round_up(p->size, 4096) ||
	    off > (u64)MAX_LFS_FILESIZE - 2 * VMIR_MAP_SLOT_BYTES(nchunks)) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[VMIR_ATTR_MAP_OFFSET],
				    "the map offset must be a multiple of 4096 past the image end");
		return -EINVAL;
	}
	p->map_offset = off;
	if (a[VMIR_ATTR_MAP_GEN])
		p->map_gen = nla_get_u64(a[VMIR_ATTR_MAP_GEN]);
	return 0;
}

static int vmir_genl_add_device(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **a = info->attrs;
	struct vmir_add_params p = {};
	struct vmir_device *dev;
	struct vmir_segment seg;
	struct sk_buff *reply;
	struct file *file;
	char name[DISK_NAME_LEN];
	u64 nchunks;
	void *hdr;
	u32 id;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_IMAGE) ||
	    GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_VERSION) ||
	    GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_SIZE) ||
	    GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_CHUNK_SIZE) ||
	    GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_MIRROR_FD))
		return -EINVAL;

	p.image = nla_data(a[VMIR_ATTR_IMAGE]);
	p.version = nla_get_u32(a[VMIR_ATTR_VERSION]);
	if (!p.image[0]) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[VMIR_ATTR_IMAGE],
				    "the image name is empty");
		return -EINVAL;
	}
	p.size = nla_get_u64(a[VMIR_ATTR_SIZE]);
	p.chunk_size = nla_get_u32(a[VMIR_ATTR_CHUNK_SIZE]);
	if (!is_power_of_2(p.chunk_size)) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[VMIR_ATTR_CHUNK_SIZE],
				    "the chunk size is not a power of two");
		return -EINVAL;
	}
	nchunks = DIV_ROUND_UP_ULL(p.size, p.chunk_size);
	if (nchunks > VMIR_MAX_CHUNKS) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[VMIR_ATTR_SIZE],
				    "more than VMIR_MAX_CHUNKS chunks: use a larger chunk size");
		return -EINVAL;
	}
	p.timeout_ms = VMIR_TIMEOUT_MS_DEFAULT;
	if (a[VMIR_ATTR_TIMEOUT_MS])
		p.timeout_ms = nla_get_u32(a[VMIR_ATTR_TIMEOUT_MS]);
	if (a[VMIR_ATTR_FLAGS])
		p.flags = nla_get_u64(a[VMIR_ATTR_FLAGS]);
	if (p.flags & ~VMIR_ADD_F_ALL) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[VMIR_ATTR_FLAGS],
				    "unknown ADD_DEVICE flags");
		return -EINVAL;
	}
	ret = vmir_genl_map_place(info, &p, nchunks);
	if (ret)
		return ret;
	ret = vmir_genl_segment(info, nchunks, &seg);
	if (ret)
		return ret;

	file = fget(nla_get_u32(a[VMIR_ATTR_MIRROR_FD]));
	if (!file) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[VMIR_ATTR_MIRROR_FD],
				    "the mirror fd is not open in the sender");
		return -EBADF;
	}
	ret = vmir_genl_check_mirror(info, file);
	if (ret)
		goto out_fput;
	reply = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!reply) {
		ret = -ENOMEM;
		goto out_fput;
	}

	p.mirror = file;
	p.net = genl_info_net(info);
	dev = vmir_dev_create(&p);
	if (IS_ERR(dev)) {
		ret = PTR_ERR(dev);
		if (ret == -ENOSPC)
			NL_SET_ERR_MSG(info->extack, "too many vmir devices");
		else
			NL_SET_ERR_MSG(info->extack,
				       "cannot allocate the device");
		goto out_free_reply;
	}
	/* The device owns the file reference from here on. */
	mutex_lock(&dev->ctl_lock);
	if (seg.len)
		ret = vmir_chunks_set_segment(dev->chunks, seg.start,
					      seg.present, seg.dirty, seg.len);
	if (!ret && !(p.flags & VMIR_ADD_F_DEFER_START))
		ret = vmir_dev_start(dev);
	mutex_unlock(&dev->ctl_lock);
	if (ret) {
		NL_SET_ERR_MSG(info->extack, "adding the disk failed");
		vmir_dev_remove(dev);
		nlmsg_free(reply);
		return ret;
	}
	/* Once published, a REMOVE_DEVICE may free it: no dev-> after. */
	id = dev->id;
	vmir_dev_publish(dev);

	snprintf(name, sizeof(name), "vmir%u", id);
	hdr = genlmsg_put_reply(reply, info, &vmir_genl_family, 0,
				VMIR_CMD_ADD_DEVICE);
	if (!hdr || nla_put_u32(reply, VMIR_ATTR_DEV_ID, id) ||
	    nla_put_string(reply, VMIR_ATTR_DISK_NAME, name) ||
	    nla_put_u32(reply, VMIR_ATTR_NCHUNKS, nchunks)) {
		WARN_ON_ONCE(1);
		nlmsg_free(reply);
		return -EMSGSIZE;
	}
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);

out_free_reply:
	nlmsg_free(reply);
out_fput:
	fput(file);
	return ret;
}

/* Under ctl_lock: a device being removed is gone for every command. */
static bool vmir_genl_removing(struct vmir_device *dev,
			       struct genl_info *info)
{
	lockdep_assert_held(&dev->ctl_lock);
	if (dev->state != VMIR_LIFE_REMOVING)
		return false;
	NL_SET_ERR_MSG(info->extack, "the device is being removed");
	return true;
}

static int vmir_genl_set_state(struct sk_buff *skb, struct genl_info *info)
{
	struct vmir_device *dev = info->user_ptr[0];
	struct vmir_segment seg;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_MAP_START) ||
	    GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_MAP_PRESENT))
		return -EINVAL;
	ret = vmir_genl_segment(info, vmir_chunks_count(dev->chunks), &seg);
	if (ret)
		return ret;
	mutex_lock(&dev->ctl_lock);
	if (vmir_genl_removing(dev, info)) {
		ret = -ENODEV;
	} else if (dev->state != VMIR_LIFE_SETUP) {
		NL_SET_ERR_MSG(info->extack,
			       "the device is started or stopped: its state can no longer be set");
		ret = -EBUSY;
	} else {
		ret = vmir_chunks_set_segment(dev->chunks, seg.start,
					      seg.present, seg.dirty, seg.len);
	}
	mutex_unlock(&dev->ctl_lock);
	return ret;
}

static int vmir_genl_start_device(struct sk_buff *skb, struct genl_info *info)
{
	struct vmir_device *dev = info->user_ptr[0];
	int ret;

	mutex_lock(&dev->ctl_lock);
	ret = vmir_dev_start(dev);
	mutex_unlock(&dev->ctl_lock);
	if (ret == -EBUSY)
		NL_SET_ERR_MSG(info->extack,
			       "the device is already started or stopped");
	else if (ret)
		NL_SET_ERR_MSG(info->extack, "adding the disk failed");
	return ret;
}

static int vmir_genl_stop_device(struct sk_buff *skb, struct genl_info *info)
{
	int ret;

	ret = vmir_dev_stop(info->user_ptr[0]);
	if (ret == -EALREADY)
		NL_SET_ERR_MSG(info->extack, "the device is already stopped");
	return ret;
}

static int vmir_genl_remove_device(struct sk_buff *skb,
				   struct genl_info *info)
{
	return vmir_dev_remove(info->user_ptr[0]);
}

/* What a device info reports: a snapshot, without holding a lock. */
struct vmir_info {
	char image[VMIR_NAME_MAX];
	u32 version;
	struct vmir_chunks_report r;
	struct vmir_served hits;
};

static void vmir_info_snapshot(struct vmir_device *dev, struct vmir_info *in)
{
	spin_lock(&dev->name_lock);
	memcpy(in->image, dev->image, sizeof(in->image));
	in->version = dev->version;
	spin_unlock(&dev->name_lock);
	vmir_chunks_report(dev->chunks, &in->r);
	vmir_served_sum(dev, &in->hits);
}

static const u32 vmir_uapi_state[] = {
	[VMIR_LIFE_SETUP] = VMIR_DEV_STATE_SETUP,
	[VMIR_LIFE_LIVE] = VMIR_DEV_STATE_LIVE,
	[VMIR_LIFE_STOPPED] = VMIR_DEV_STATE_STOPPED,
	[VMIR_LIFE_REMOVING] = VMIR_DEV_STATE_REMOVING,
};

static int vmir_put_stats(struct sk_buff *skb, const struct vmir_stats *s,
			  const struct vmir_served *hits, u64 map_commits)
{
	struct nlattr *nest;

	nest = nla_nest_start(skb, VMIR_ATTR_STATS);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, VMIR_STAT_MISSES, s->misses,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_MISS_WAITS, s->miss_waits,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_FETCHED_CHUNKS,
			      s->fetched_chunks, VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_FETCHED_BYTES, s->fetched_bytes,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_FETCH_ERRORS, s->fetch_errors,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_FETCH_LAT_SUM_NS,
			      s->fetch_lat_sum_ns, VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_FETCH_LAT_COUNT,
			      s->fetch_lat_count, VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_TIMEOUTS, s->timeouts,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_CAPTURE_WAITS, s->capture_waits,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_EVENTS_SENT, s->events_sent,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_EVENT_RETRIES, s->event_retries,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_PREFETCHES, s->prefetches,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_HITS_INLINE, 0,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_HITS_NOWAIT, hits->nowait_hits,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_HITS_WORKER, hits->worker_hits,
			      VMIR_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIR_STAT_MAP_COMMITS, map_commits,
			      VMIR_STAT_PAD)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int vmir_genl_fill_info(struct sk_buff *skb, struct vmir_device *dev,
			       u32 portid, u32 seq, int flags, u8 cmd)
{
	struct vmir_chunks *c = dev->chunks;
	char name[DISK_NAME_LEN];
	struct vmir_info *in;
	u64 dev_flags = 0;
	void *hdr;
	int ret = -EMSGSIZE;

	in = kmalloc(sizeof(*in), GFP_KERNEL);
	if (!in)
		return -ENOMEM;
	vmir_info_snapshot(dev, in);
	if (dev->add_flags & VMIR_ADD_F_READ_ONLY)
		dev_flags |= VMIR_DEV_F_READ_ONLY;
	if (in->r.committing)
		dev_flags |= VMIR_DEV_F_COMMIT;
	if (vmir_helper_present(dev))
		dev_flags |= VMIR_DEV_F_HELPER;
	snprintf(name, sizeof(name), "vmir%d", dev->id);

	hdr = genlmsg_put(skb, portid, seq, &vmir_genl_family, flags, cmd);
	if (!hdr)
		goto out_free;
	if (nla_put_u32(skb, VMIR_ATTR_DEV_ID, dev->id) ||
	    nla_put_string(skb, VMIR_ATTR_DISK_NAME, name) ||
	    nla_put_string(skb, VMIR_ATTR_IMAGE, in->image) ||
	    nla_put_u32(skb, VMIR_ATTR_VERSION, in->version) ||
	    nla_put_u64_64bit(skb, VMIR_ATTR_SIZE, vmir_chunks_size(c),
			      VMIR_ATTR_PAD) ||
	    nla_put_u32(skb, VMIR_ATTR_CHUNK_SIZE, vmir_chunks_chunk_size(c)) ||
	    nla_put_u32(skb, VMIR_ATTR_NCHUNKS, vmir_chunks_count(c)) ||
	    nla_put_u32(skb, VMIR_ATTR_TIMEOUT_MS, dev->timeout_ms) ||
	    nla_put_u32(skb, VMIR_ATTR_STATE,
			vmir_uapi_state[READ_ONCE(dev->state)]) ||
	    nla_put_u64_64bit(skb, VMIR_ATTR_DEV_FLAGS, dev_flags,
			      VMIR_ATTR_PAD) ||
	    nla_put_u32(skb, VMIR_ATTR_NR_PRESENT, in->r.nr_present) ||
	    nla_put_u32(skb, VMIR_ATTR_NR_DIRTY, in->r.nr_dirty) ||
	    nla_put_u32(skb, VMIR_ATTR_NR_FETCHING, in->r.nr_fetching) ||
	    nla_put_u32(skb, VMIR_ATTR_NR_PARKED, in->r.nr_parked))
		goto out_cancel;
	if (in->r.committing &&
	    (nla_put_u32(skb, VMIR_ATTR_NR_COMMIT, in->r.nr_commit) ||
	     nla_put_u32(skb, VMIR_ATTR_NR_FROZEN, in->r.nr_frozen)))
		goto out_cancel;
	if (vmir_put_stats(skb, &in->r.stats, &in->hits,
			   READ_ONCE(dev->map_commits)))
		goto out_cancel;
	genlmsg_end(skb, hdr);
	ret = 0;
	goto out_free;

out_cancel:
	genlmsg_cancel(skb, hdr);
out_free:
	kfree(in);
	return ret;
}

static int vmir_genl_get_status(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *reply;
	int ret;

	reply = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	ret = vmir_genl_fill_info(reply, info->user_ptr[0], info->snd_portid,
				  info->snd_seq, 0, VMIR_CMD_GET_STATUS);
	if (ret) {
		nlmsg_free(reply);
		return ret;
	}
	return genlmsg_reply(reply, info);
}

/* Dumps have no pre_doit: their start callbacks check for themselves. */
static int vmir_genl_dump_start(struct netlink_callback *cb)
{
	return vmir_genl_capable(cb->skb) ? 0 : -EPERM;
}

/* LIST: one device info per device of the caller's namespace. */
static int vmir_genl_list(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct net *net = sock_net(cb->skb->sk);
	struct vmir_device *dev;
	unsigned long pos = cb->args[0];
	int ret = 0;

	while ((dev = vmir_dev_get_next(net, &pos))) {
		ret = vmir_genl_fill_info(skb, dev, NETLINK_CB(cb->skb).portid,
					  cb->nlh->nlmsg_seq, NLM_F_MULTI,
					  VMIR_CMD_LIST);
		vmir_dev_put(dev);
		if (ret)
			break;
		pos++;
	}
	cb->args[0] = pos;
	/* A device that fits no message on its own is an error. */
	if (ret && !skb->len)
		return ret;
	return skb->len;
}

/* A GET_STATE dump in progress, in cb->args[0]. */
struct vmir_state_dump {
	struct vmir_device *dev;	/* referenced */
	u32 off;			/* next bitmap byte to send */
	/* One segment of each map, read at one instant. */
	u8 present[VMIR_MAP_SEG_MAX];
	u8 dirty[VMIR_MAP_SEG_MAX];
	u8 commit[VMIR_MAP_SEG_MAX];
};

static int vmir_genl_get_state_start(struct netlink_callback *cb)
{
	struct nlattr **attrs = vmir_compat_dump_attrs(cb);
	struct vmir_state_dump *d;
	struct vmir_device *dev;

	if (!vmir_genl_capable(cb->skb))
		return -EPERM;
	if (!attrs[VMIR_ATTR_DEV_ID]) {
		NL_SET_ERR_MSG(cb->extack, "GET_STATE needs VMIR_ATTR_DEV_ID");
		return -EINVAL;
	}
	dev = vmir_genl_lookup(sock_net(cb->skb->sk), attrs[VMIR_ATTR_DEV_ID],
			       cb->extack);
	if (IS_ERR(dev))
		return PTR_ERR(dev);
	d = kvmalloc(sizeof(*d), GFP_KERNEL);
	if (!d) {
		vmir_dev_put(dev);
		return -ENOMEM;
	}
	d->dev = dev;
	d->off = 0;
	cb->args[0] = (long)d;
	return 0;
}

static int vmir_genl_get_state_done(struct netlink_callback *cb)
{
	struct vmir_state_dump *d = (struct vmir_state_dump *)cb->args[0];

	if (d) {
		vmir_dev_put(d->dev);
		kvfree(d);
	}
	return 0;
}

/* Append one segment message; -EMSGSIZE when @skb has no room left. */
static int vmir_genl_state_segment(struct sk_buff *skb,
				   struct netlink_callback *cb,
				   struct vmir_state_dump *d, u32 *len)
{
	struct vmir_chunks *c = d->dev->chunks;
	u32 nchunks = vmir_chunks_count(c);
	u32 left = DIV_ROUND_UP(nchunks, 8) - d->off;
	bool committing;
	void *hdr;
	int room;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &vmir_genl_family, NLM_F_MULTI, VMIR_CMD_GET_STATE);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_u32(skb, VMIR_ATTR_DEV_ID, d->dev->id) ||
	    nla_put_u32(skb, VMIR_ATTR_NCHUNKS, nchunks) ||
	    nla_put_u32(skb, VMIR_ATTR_MAP_START, d->off * 8))
		goto out_cancel;

	/* Room for two maps; the commit map, if any, shortens the segment. */
	room = skb_tailroom(skb) / 2 - nla_total_size(0) - NLA_ALIGNTO;
	*len = min3(left, VMIR_MAP_SEG_MAX, (u32)max(room, 0));
	committing = vmir_chunks_get_segment(c, d->off * 8, *len, d->present,
					     d->dirty, d->commit);
	if (committing) {
		room = skb_tailroom(skb) / 3 - nla_total_size(0) - NLA_ALIGNTO;
		*len = min_t(u32, *len, max(room, 0));
	}
	/* Keep segments worth a message: retry in the next skb. */
	if (*len < min(left, 64U))
		goto out_cancel;
	if (WARN_ON_ONCE(nla_put(skb, VMIR_ATTR_MAP_PRESENT, *len,
				 d->present) ||
			 nla_put(skb, VMIR_ATTR_MAP_DIRTY, *len, d->dirty) ||
			 (committing && nla_put(skb, VMIR_ATTR_MAP_COMMIT,
						*len, d->commit))))
		goto out_cancel;
	genlmsg_end(skb, hdr);
	return 0;

out_cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

static int vmir_genl_get_state(struct sk_buff *skb,
			       struct netlink_callback *cb)
{
	struct vmir_state_dump *d = (struct vmir_state_dump *)cb->args[0];
	u32 nbytes = DIV_ROUND_UP(vmir_chunks_count(d->dev->chunks), 8);
	int ret = 0;
	u32 len;

	while (d->off < nbytes) {
		ret = vmir_genl_state_segment(skb, cb, d, &len);
		if (ret)
			break;
		d->off += len;
	}
	if (ret && !skb->len)
		return ret;
	return skb->len;
}

/* The chunk list of a per-chunk command; pre_doit checked it. */
static const u32 *vmir_genl_chunks(struct genl_info *info, u32 *n)
{
	struct nlattr *a = info->attrs[VMIR_ATTR_CHUNKS];

	*n = nla_len(a) / sizeof(u32);
	return nla_data(a);
}

/*
 * CHUNK_READY: each chunk on its own; -ENOENT when some chunk had no MISS
 * outstanding (the others were answered all the same).
 */
static int vmir_genl_chunk_ready(struct sk_buff *skb, struct genl_info *info)
{
	struct vmir_device *dev = info->user_ptr[0];
	const u32 *chunks;
	int status, ret = 0;
	u32 i, n;

	if (GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_STATUS))
		return -EINVAL;
	status = nla_get_s32(info->attrs[VMIR_ATTR_STATUS]);
	chunks = vmir_genl_chunks(info, &n);
	for (i = 0; i < n; i++)
		if (vmir_chunk_ready(dev->chunks, chunks[i], status) == -ENOENT)
			ret = -ENOENT;
	if (ret)
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[VMIR_ATTR_CHUNKS],
				    "no MISS is outstanding for a chunk of the list");
	return ret;
}

/*
 * PREFETCH: claim what can be claimed; the reply lists it. A present
 * chunk, or one being fetched, is left out.
 */
static int vmir_genl_prefetch(struct sk_buff *skb, struct genl_info *info)
{
	struct vmir_device *dev = info->user_ptr[0];
	struct sk_buff *reply;
	const u32 *chunks;
	u32 i, n, nr = 0;
	u32 *claimed;
	void *hdr;
	int ret = 0;

	chunks = vmir_genl_chunks(info, &n);
	claimed = kmalloc_array(n, sizeof(*claimed), GFP_KERNEL);
	reply = genlmsg_new(nla_total_size(sizeof(u32)) +
			    nla_total_size(n * sizeof(u32)), GFP_KERNEL);
	if (!claimed || !reply) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < n; i++) {
		ret = vmir_chunk_prefetch(dev->chunks, chunks[i]);
		if (!ret)
			claimed[nr++] = chunks[i];
		else if (ret != -EEXIST && ret != -EALREADY)
			break;
		ret = 0;
	}
	if (ret) {
		/* a stopping device: what it claimed fails with it */
		NL_SET_ERR_MSG(info->extack, "the device is stopping");
		goto out_free;
	}
	hdr = genlmsg_put_reply(reply, info, &vmir_genl_family, 0,
				VMIR_CMD_PREFETCH);
	if (!hdr || nla_put_u32(reply, VMIR_ATTR_DEV_ID, dev->id) ||
	    (nr && nla_put(reply, VMIR_ATTR_CHUNKS, nr * sizeof(u32),
			   claimed))) {
		WARN_ON_ONCE(1);
		ret = -EMSGSIZE;
		goto out_free;
	}
	genlmsg_end(reply, hdr);
	kfree(claimed);
	return genlmsg_reply(reply, info);

out_free:
	nlmsg_free(reply);
	kfree(claimed);
	return ret;
}

/* GET_ACCESS: the first-access order, VMIR_CHUNKS_MAX chunks at a time */
static int vmir_genl_get_access(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *a = info->attrs[VMIR_ATTR_ACCESS_START];
	struct vmir_device *dev = info->user_ptr[0];
	u32 start = a ? nla_get_u32(a) : 0;
	struct sk_buff *reply;
	u32 nr, lost, *chunks;
	void *hdr;
	int ret;

	chunks = kmalloc_array(VMIR_CHUNKS_MAX, sizeof(*chunks), GFP_KERNEL);
	reply = genlmsg_new(3 * nla_total_size(sizeof(u32)) +
			    nla_total_size(VMIR_CHUNKS_MAX * sizeof(u32)),
			    GFP_KERNEL);
	if (!chunks || !reply) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = vmir_chunks_access(dev->chunks, start, chunks, VMIR_CHUNKS_MAX,
				 &nr, &lost);
	if (ret < 0) {
		NL_SET_ERR_MSG_ATTR(info->extack, a,
				    "ACCESS_START is past the recorded accesses");
		goto out_free;
	}
	hdr = genlmsg_put_reply(reply, info, &vmir_genl_family, 0,
				VMIR_CMD_GET_ACCESS);
	if (!hdr || nla_put_u32(reply, VMIR_ATTR_DEV_ID, dev->id) ||
	    nla_put_u32(reply, VMIR_ATTR_NR_ACCESSED, nr) ||
	    nla_put_u32(reply, VMIR_ATTR_NR_ACCESS_LOST, lost) ||
	    (ret && nla_put(reply, VMIR_ATTR_CHUNKS, ret * sizeof(u32),
			    chunks))) {
		WARN_ON_ONCE(1);
		ret = -EMSGSIZE;
		goto out_free;
	}
	genlmsg_end(reply, hdr);
	kfree(chunks);
	return genlmsg_reply(reply, info);

out_free:
	nlmsg_free(reply);
	kfree(chunks);
	return ret;
}

static int vmir_genl_commit_begin(struct sk_buff *skb, struct genl_info *info)
{
	struct vmir_device *dev = info->user_ptr[0];
	struct sk_buff *reply;
	u32 nr_commit;
	void *hdr;
	int ret;

	reply = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	mutex_lock(&dev->ctl_lock);
	if (vmir_genl_removing(dev, info)) {
		ret = -ENODEV;
	} else if (dev->state == VMIR_LIFE_STOPPED) {
		NL_SET_ERR_MSG(info->extack, "the device is stopped");
		ret = -EBUSY;
	} else {
		ret = vmir_chunks_commit_begin(dev->chunks, &nr_commit);
		if (ret == -EBUSY)
			NL_SET_ERR_MSG(info->extack,
				       "a commit is already active on this device");
	}
	mutex_unlock(&dev->ctl_lock);
	if (ret)
		goto out_free;
	hdr = genlmsg_put_reply(reply, info, &vmir_genl_family, 0,
				VMIR_CMD_COMMIT_BEGIN);
	if (!hdr || nla_put_u32(reply, VMIR_ATTR_DEV_ID, dev->id) ||
	    nla_put_u32(reply, VMIR_ATTR_NR_COMMIT, nr_commit)) {
		WARN_ON_ONCE(1);
		ret = -EMSGSIZE;
		goto out_free;
	}
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);

out_free:
	nlmsg_free(reply);
	return ret;
}

/* CHUNK_CAPTURED: -ENOENT when some chunk was not in the commit set */
static int vmir_genl_chunk_captured(struct sk_buff *skb,
				    struct genl_info *info)
{
	struct vmir_device *dev = info->user_ptr[0];
	const u32 *chunks;
	int ret = 0;
	u32 i, n;

	chunks = vmir_genl_chunks(info, &n);
	for (i = 0; i < n; i++)
		if (vmir_chunk_captured(dev->chunks, chunks[i]) == -ENOENT)
			ret = -ENOENT;
	if (ret)
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[VMIR_ATTR_CHUNKS],
				    "no commit is active or a chunk of the list is not in the commit set");
	return ret;
}

/* image may be NULL: only the version changes */
static void vmir_set_version(struct vmir_device *dev, const char *image,
			     u32 version)
{
	spin_lock(&dev->name_lock);
	if (image)
		strscpy(dev->image, image, sizeof(dev->image));
	dev->version = version;
	spin_unlock(&dev->name_lock);
}

static const char *vmir_genl_image(struct genl_info *info)
{
	struct nlattr *image = info->attrs[VMIR_ATTR_IMAGE];

	return image ? nla_data(image) : NULL;
}

static int vmir_genl_commit_end(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *version = info->attrs[VMIR_ATTR_VERSION];
	struct vmir_device *dev = info->user_ptr[0];
	int status, ret;

	if (GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_STATUS))
		return -EINVAL;
	status = nla_get_s32(info->attrs[VMIR_ATTR_STATUS]);
	if (status && version) {
		NL_SET_ERR_MSG_ATTR(info->extack, version,
				    "a failed commit sets no version");
		return -EINVAL;
	}
	if (info->attrs[VMIR_ATTR_IMAGE] && !version) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[VMIR_ATTR_IMAGE],
				    "an image name needs a version");
		return -EINVAL;
	}
	mutex_lock(&dev->ctl_lock);
	ret = vmir_chunks_commit_end(dev->chunks, status);
	if (!ret && version)
		vmir_set_version(dev, vmir_genl_image(info),
				 nla_get_u32(version));
	/*
	 * The durable map now names the new version, with the published
	 * chunks clean. A failure here fails nothing: the next FLUSH writes
	 * the copy again.
	 */
	if (!ret && version)
		vmir_map_commit(dev, true);
	mutex_unlock(&dev->ctl_lock);
	if (ret == -ENOENT)
		NL_SET_ERR_MSG(info->extack, "no commit is active on this device");
	return ret;
}

static int vmir_genl_set_version(struct sk_buff *skb, struct genl_info *info)
{
	if (GENL_REQ_ATTR_CHECK(info, VMIR_ATTR_VERSION))
		return -EINVAL;
	vmir_set_version(info->user_ptr[0], vmir_genl_image(info),
			 nla_get_u32(info->attrs[VMIR_ATTR_VERSION]));
	return 0;
}

static struct netlink_range_validation vmir_chunk_size_range = {
	.min = VMIR_CHUNK_SIZE_MIN,
	.max = VMIR_CHUNK_SIZE_MAX,
};

static struct netlink_range_validation vmir_timeout_range = {
	.min = VMIR_TIMEOUT_MS_MIN,
	.max = VMIR_TIMEOUT_MS_MAX,
};

static struct netlink_range_validation vmir_fd_range = {
	.min = 0,
	.max = INT_MAX,
};

/* Attributes only the kernel sends are rejected in requests. */
static const struct nla_policy vmir_policy[VMIR_ATTR_MAX + 1] = {
	[VMIR_ATTR_PAD]		= { .type = NLA_REJECT },
	[VMIR_ATTR_DEV_ID]	= { .type = NLA_U32 },
	[VMIR_ATTR_DISK_NAME]	= { .type = NLA_REJECT },
	[VMIR_ATTR_IMAGE]	= { .type = NLA_NUL_STRING,
				    .len = VMIR_NAME_MAX - 1 },
	[VMIR_ATTR_VERSION]	= NLA_POLICY_MIN(NLA_U32, 1),
	[VMIR_ATTR_SIZE]	= NLA_POLICY_MIN(NLA_U64, 1),
	[VMIR_ATTR_CHUNK_SIZE]	= NLA_POLICY_FULL_RANGE(NLA_U32,
							&vmir_chunk_size_range),
	[VMIR_ATTR_NCHUNKS]	= { .type = NLA_REJECT },
	[VMIR_ATTR_MIRROR_FD]	= NLA_POLICY_FULL_RANGE(NLA_U32,
							&vmir_fd_range),
	[VMIR_ATTR_TIMEOUT_MS]	= NLA_POLICY_FULL_RANGE(NLA_U32,
							&vmir_timeout_range),
	[VMIR_ATTR_FLAGS]	= { .type = NLA_U64 },
	[VMIR_ATTR_CHUNKS]	= { .type = NLA_BINARY,
				    .len = VMIR_CHUNKS_MAX * sizeof(u32) },
	[VMIR_ATTR_STATUS]	= NLA_POLICY_RANGE(NLA_S32, -MAX_ERRNO, 0),
	[VMIR_ATTR_MAP_START]	= { .type = NLA_U32 },
	[VMIR_ATTR_MAP_PRESENT]	= { .type = NLA_BINARY,
				    .len = VMIR_MAP_SEG_MAX },
	[VMIR_ATTR_MAP_DIRTY]	= { .type = NLA_BINARY,
				    .len = VMIR_MAP_SEG_MAX },
	[VMIR_ATTR_MAP_COMMIT ... VMIR_ATTR_STATS] = { .type = NLA_REJECT },
	[VMIR_ATTR_MAP_OFFSET]	= { .type = NLA_U64 },
	[VMIR_ATTR_MAP_GEN]	= { .type = NLA_U64 },
	[VMIR_ATTR_ACCESS_START] = { .type = NLA_U32 },
	[VMIR_ATTR_NR_ACCESSED]	= { .type = NLA_REJECT },
	[VMIR_ATTR_NR_ACCESS_LOST] = { .type = NLA_REJECT },
};

static const struct genl_ops vmir_genl_ops[] = {
	{
		.cmd		= VMIR_CMD_HELPER_REGISTER,
		.flags		= GENL_ADMIN_PERM,
		.doit		= vmir_genl_helper_register,
	},
	{
		.cmd		= VMIR_CMD_HELPER_UNREGISTER,
		.flags		= GENL_ADMIN_PERM,
		.doit		= vmir_genl_helper_unregister,
	},
	{
		.cmd		= VMIR_CMD_ADD_DEVICE,
		.flags		= GENL_ADMIN_PERM,
		.doit		= vmir_genl_add_device,
	},
	{
		.cmd		= VMIR_CMD_SET_STATE,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV,
		.doit		= vmir_genl_set_state,
	},
	{
		.cmd		= VMIR_CMD_START_DEVICE,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV,
		.doit		= vmir_genl_start_device,
	},
	{
		.cmd		= VMIR_CMD_STOP_DEVICE,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV,
		.doit		= vmir_genl_stop_device,
	},
	{
		.cmd		= VMIR_CMD_REMOVE_DEVICE,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV,
		.doit		= vmir_genl_remove_device,
	},
	{
		.cmd		= VMIR_CMD_GET_STATUS,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV,
		.doit		= vmir_genl_get_status,
	},
	{
		.cmd		= VMIR_CMD_LIST,
		.flags		= GENL_ADMIN_PERM,
		.start		= vmir_genl_dump_start,
		.dumpit		= vmir_genl_list,
	},
	{
		.cmd		= VMIR_CMD_GET_STATE,
		.flags		= GENL_ADMIN_PERM,
		.start		= vmir_genl_get_state_start,
		.dumpit		= vmir_genl_get_state,
		.done		= vmir_genl_get_state_done,
	},
	{
		.cmd		= VMIR_CMD_CHUNK_READY,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV | VMIR_GENL_CHUNKS,
		.doit		= vmir_genl_chunk_ready,
	},
	{
		.cmd		= VMIR_CMD_PREFETCH,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV | VMIR_GENL_CHUNKS,
		.doit		= vmir_genl_prefetch,
	},
	{
		.cmd		= VMIR_CMD_GET_ACCESS,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV,
		.doit		= vmir_genl_get_access,
	},
	{
		.cmd		= VMIR_CMD_COMMIT_BEGIN,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV,
		.doit		= vmir_genl_commit_begin,
	},
	{
		.cmd		= VMIR_CMD_CHUNK_CAPTURED,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV | VMIR_GENL_CHUNKS,
		.doit		= vmir_genl_chunk_captured,
	},
	{
		.cmd		= VMIR_CMD_COMMIT_END,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV,
		.doit		= vmir_genl_commit_end,
	},
	{
		.cmd		= VMIR_CMD_SET_VERSION,
		.flags		= GENL_ADMIN_PERM,
		.internal_flags	= VMIR_GENL_DEV,
		.doit		= vmir_genl_set_version,
	},
};

static struct genl_family vmir_genl_family __ro_after_init = {
	.name		= VMIR_GENL_NAME,
	.version	= VMIR_GENL_VERSION,
	.maxattr	= VMIR_ATTR_MAX,
	.policy		= vmir_policy,
	.netnsok	= true,
	.parallel_ops	= true,
	.pre_doit	= vmir_genl_pre_doit,
	.post_doit	= vmir_genl_post_doit,
	.module		= THIS_MODULE,
	.ops		= vmir_genl_ops,
	.n_ops		= ARRAY_SIZE(vmir_genl_ops),
};

int vmir_genl_init(void)
{
	int ret;

	ret = netlink_register_notifier(&vmir_netlink_notifier);
	if (ret)
		goto out;
	ret = genl_register_family(&vmir_genl_family);
	if (ret)
		goto out_unregister_notifier;
	return 0;

out_unregister_notifier:
	netlink_unregister_notifier(&vmir_netlink_notifier);
out:
	return ret;
}

void vmir_genl_exit(void)
{
	struct vmir_helper *h, *tmp;
	LIST_HEAD(gone);

	genl_unregister_family(&vmir_genl_family);
	netlink_unregister_notifier(&vmir_netlink_notifier);
	/* Devices still exist: their event work must find no helper. */
	spin_lock(&vmir_helper_lock);
	list_splice_init(&vmir_helpers, &gone);
	spin_unlock(&vmir_helper_lock);
	list_for_each_entry_safe(h, tmp, &gone, node)
		kfree(h);
}

MODULE_ALIAS_GENL_FAMILY(VMIR_GENL_NAME);
