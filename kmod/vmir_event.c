// SPDX-License-Identifier: GPL-2.0
/*
 * vmir: the event outbox of a device (interface in vmir_event.h).
 *
 * One bitmap of pending chunks per kind of event, with its count, under
 * ev->lock. The chunk state posts and cancels under its own lock, which
 * nests outside ev->lock, so a chunk's events follow its state exactly.
 * The work item is the device's only sender: at most one event is in
 * flight, off the pending map; a cancel meanwhile clears inflight_wanted
 * so that a failed delivery of it is not retried.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "vmir_dev.h"
#include "vmir_event.h"

#define VMIR_EVENT_RETRY	(HZ / 50)	/* undelivered event retry */

static const u8 vmir_event_cmd[VMIR_NR_EVENT_KINDS] = {
	[VMIR_EVENT_MISS] = VMIR_CMD_MISS,
	[VMIR_EVENT_CAPTURE] = VMIR_CMD_CAPTURE_NEEDED,
};

struct vmir_events {
	struct vmir_device *dev;	/* constant: wq, id, net */
	u32 nchunks;			/* constant */
	struct delayed_work work;	/* delivers, on dev->wq */

	spinlock_t lock;
	unsigned long *pending[VMIR_NR_EVENT_KINDS];	/* lock */
	u32 nr_pending[VMIR_NR_EVENT_KINDS];		/* lock */
	/* The event in flight; wanted until delivered or cancelled. */
	bool inflight_wanted;				/* lock */
	enum vmir_event_kind inflight_kind;		/* lock */
	u32 inflight_chunk;				/* lock */
	bool closed;			/* lock: nothing is delivered any more */
	u64 sent;			/* lock */
	u64 retries;			/* lock */
};

static void vmir_events_work(struct work_struct *work);

struct vmir_events *vmir_events_create(struct vmir_device *dev, u32 nchunks)
{
	struct vmir_events *ev;

	ev = kzalloc(sizeof(*ev), GFP_KERNEL);
	if (!ev)
		goto out;
	ev->dev = dev;
	ev->nchunks = nchunks;
	spin_lock_init(&ev->lock);
	INIT_DELAYED_WORK(&ev->work, vmir_events_work);
	ev->pending[VMIR_EVENT_MISS] = vmir_map_alloc(nchunks);
	if (!ev->pending[VMIR_EVENT_MISS])
		goto out_free_ev;
	ev->pending[VMIR_EVENT_CAPTURE] = vmir_map_alloc(nchunks);
	if (!ev->pending[VMIR_EVENT_CAPTURE])
		goto out_free_miss;
	return ev;

out_free_miss:
	kvfree(ev->pending[VMIR_EVENT_MISS]);
out_free_ev:
	kfree(ev);
out:
	return NULL;
}

/* The outbox was closed, or never had anything to deliver. */
void vmir_events_destroy(struct vmir_events *ev)
{
	WARN_ON_ONCE(delayed_work_pending(&ev->work));
	kvfree(ev->pending[VMIR_EVENT_CAPTURE]);
	kvfree(ev->pending[VMIR_EVENT_MISS]);
	kfree(ev);
}

static void vmir_events_kick_locked(struct vmir_events *ev)
{
	lockdep_assert_held(&ev->lock);
	if (!ev->closed)
		mod_delayed_work(ev->dev->wq, &ev->work, 0);
}

/**
 * vmir_event_post - the chunk state wants an event sent
 * @ev: the outbox
 * @kind: which event
 * @chunk: chunk index
 *
 * Delivery starts at once, from the outbox's work item.
 */
void vmir_event_post(struct vmir_events *ev, enum vmir_event_kind kind,
		     u32 chunk)
{
	spin_lock(&ev->lock);
	if (!__test_and_set_bit(chunk, ev->pending[kind])) {
		ev->nr_pending[kind]++;
		vmir_events_kick_locked(ev);
	}
	spin_unlock(&ev->lock);
}

/* The chunk no longer needs the event: forget it, pending or in flight. */
void vmir_event_cancel(struct vmir_events *ev, enum vmir_event_kind kind,
		       u32 chunk)
{
	spin_lock(&ev->lock);
	if (__test_and_clear_bit(chunk, ev->pending[kind]))
		ev->nr_pending[kind]--;
	if (ev->inflight_wanted && ev->inflight_kind == kind &&
	    ev->inflight_chunk == chunk)
		ev->inflight_wanted = false;
	spin_unlock(&ev->lock);
}

/* No chunk needs an event of @kind any more (a commit ended). */
void vmir_events_cancel_all(struct vmir_events *ev, enum vmir_event_kind kind)
{
	spin_lock(&ev->lock);
	if (ev->nr_pending[kind])
		bitmap_zero(ev->pending[kind], ev->nchunks);
	ev->nr_pending[kind] = 0;
	if (ev->inflight_kind == kind)
		ev->inflight_wanted = false;
	spin_unlock(&ev->lock);
}

/**
 * vmir_events_resend - a helper registered: it must get every event again
 * @ev: the outbox
 * @kind: which event
 * @chunks: every chunk that needs the event (a superset of the pending)
 * @nr: the number of bits set in @chunks
 */
void vmir_events_resend(struct vmir_events *ev, enum vmir_event_kind kind,
			const unsigned long *chunks, u32 nr)
{
	spin_lock(&ev->lock);
	bitmap_copy(ev->pending[kind], chunks, ev->nchunks);
	ev->retries += nr - ev->nr_pending[kind];
	ev->nr_pending[kind] = nr;
	if (nr)
		vmir_events_kick_locked(ev);
	spin_unlock(&ev->lock);
}

/* Nothing is delivered from now on; waits for a delivery in progress. */
void vmir_events_close(struct vmir_events *ev)
{
	spin_lock(&ev->lock);
	ev->closed = true;
	spin_unlock(&ev->lock);
	cancel_delayed_work_sync(&ev->work);
}

void vmir_events_report(struct vmir_events *ev, u64 *sent, u64 *retries)
{
	spin_lock(&ev->lock);
	*sent = ev->sent;
	*retries = ev->retries;
	spin_unlock(&ev->lock);
}

/* Take one pending event into flight; false when there is none. */
static bool vmir_events_pop_locked(struct vmir_events *ev,
				   enum vmir_event_kind *kind, u32 *chunk)
{
	unsigned long i;
	int k;

	lockdep_assert_held(&ev->lock);
	for (k = 0; k < VMIR_NR_EVENT_KINDS; k++) {
		if (!ev->nr_pending[k])
			continue;
		i = find_first_bit(ev->pending[k], ev->nchunks);
		if (WARN_ON_ONCE(i >= ev->nchunks)) {
			ev->nr_pending[k] = 0;
			continue;
		}
		__clear_bit(i, ev->pending[k]);
		ev->nr_pending[k]--;
		ev->inflight_wanted = true;
		ev->inflight_kind = k;
		ev->inflight_chunk = i;
		*kind = k;
		*chunk = i;
		return true;
	}
	return false;
}

/* ev->work: deliver pending events, misses first. */
static void vmir_events_work(struct work_struct *work)
{
	struct vmir_events *ev = container_of(to_delayed_work(work),
					      struct vmir_events, work);
	enum vmir_event_kind kind;
	u32 chunk;
	int ret;

	for (;;) {
		spin_lock(&ev->lock);
		if (ev->closed || !vmir_events_pop_locked(ev, &kind, &chunk)) {
			spin_unlock(&ev->lock);
			return;
		}
		spin_unlock(&ev->lock);

		ret = vmir_genl_send_event(ev->dev, vmir_event_cmd[kind],
					   chunk);

		spin_lock(&ev->lock);
		if (!ret) {
			ev->sent++;
		} else {
			if (ev->inflight_wanted &&
			    !__test_and_set_bit(chunk, ev->pending[kind]))
				ev->nr_pending[kind]++;
			/* No helper: its registration sends all again. */
			if (ret != -ENOTCONN) {
				ev->retries++;
				if (!ev->closed)
					queue_delayed_work(ev->dev->wq,
							   &ev->work,
							   VMIR_EVENT_RETRY);
			}
		}
		ev->inflight_wanted = false;
		spin_unlock(&ev->lock);
		if (ret)
			return;
	}
}
