// SPDX-License-Identifier: GPL-2.0
/*
 * vmir: the event outbox of a device (interface in vmir_event.h).
 *
 * One bitmap of pending chunks per kind of event, with its count, under
 * ev->lock. The chunk state posts and cancels under its own lock, which
 * nests outside ev->lock, so a chunk's events follow its state exactly.
 * The work item is the device's only sender: at most one message is in
 * flight, its chunks moved from the pending map to the in-flight map of
 * their kind; a cancel meanwhile clears the chunk's in-flight bit, so
 * that a failed delivery does not bring it back.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "vmir_dev.h"
#include "vmir_event.h"

#define VMIR_EVENT_RETRY	(HZ / 50)	/* undelivered event retry */
/* chunks per event message: one page of indexes */
#define VMIR_EVENT_BATCH	(PAGE_SIZE / sizeof(u32))
static_assert(VMIR_EVENT_BATCH <= VMIR_CHUNKS_MAX);

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
	/* The message in flight: its chunks, still wanted (not cancelled). */
	unsigned long *inflight[VMIR_NR_EVENT_KINDS];	/* lock */
	u32 *batch;			/* its chunk indexes; the work only */
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
	ev->inflight[VMIR_EVENT_MISS] = vmir_map_alloc(nchunks);
	if (!ev->inflight[VMIR_EVENT_MISS])
		goto out_free_capture;
	ev->inflight[VMIR_EVENT_CAPTURE] = vmir_map_alloc(nchunks);
	if (!ev->inflight[VMIR_EVENT_CAPTURE])
		goto out_free_inflight_miss;
	ev->batch = kmalloc_array(VMIR_EVENT_BATCH, sizeof(u32), GFP_KERNEL);
	if (!ev->batch)
		goto out_free_inflight_capture;
	return ev;

out_free_inflight_capture:
	kvfree(ev->inflight[VMIR_EVENT_CAPTURE]);
out_free_inflight_miss:
	kvfree(ev->inflight[VMIR_EVENT_MISS]);
out_free_capture:
	kvfree(ev->pending[VMIR_EVENT_CAPTURE]);
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
	kfree(ev->batch);
	kvfree(ev->inflight[VMIR_EVENT_CAPTURE]);
	kvfree(ev->inflight[VMIR_EVENT_MISS]);
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
	__clear_bit(chunk, ev->inflight[kind]);
	spin_unlock(&ev->lock);
}

/* No chunk needs an event of @kind any more (a commit ended). */
void vmir_events_cancel_all(struct vmir_events *ev, enum vmir_event_kind kind)
{
	spin_lock(&ev->lock);
	if (ev->nr_pending[kind])
		bitmap_zero(ev->pending[kind], ev->nchunks);
	ev->nr_pending[kind] = 0;
	bitmap_zero(ev->inflight[kind], ev->nchunks);
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

/*
 * Take up to VMIR_EVENT_BATCH pending chunks of one kind (misses first)
 * into flight, their indexes into ev->batch; 0 when nothing is pending.
 */
static u32 vmir_events_pop_locked(struct vmir_events *ev,
				  enum vmir_event_kind *kind)
{
	unsigned long i = 0;
	u32 n = 0;
	int k;

	lockdep_assert_held(&ev->lock);
	for (k = 0; k < VMIR_NR_EVENT_KINDS; k++)
		if (ev->nr_pending[k])
			break;
	if (k == VMIR_NR_EVENT_KINDS)
		return 0;
	while (n < VMIR_EVENT_BATCH && ev->nr_pending[k]) {
		i = find_next_bit(ev->pending[k], ev->nchunks, i);
		if (WARN_ON_ONCE(i >= ev->nchunks)) {
			ev->nr_pending[k] = 0;
			break;
		}
		__clear_bit(i, ev->pending[k]);
		ev->nr_pending[k]--;
		__set_bit(i, ev->inflight[k]);
		ev->batch[n++] = i;
	}
	*kind = k;
	return n;
}

/* ev->work: deliver pending events, misses first, in batches. */
static void vmir_events_work(struct work_struct *work)
{
	struct vmir_events *ev = container_of(to_delayed_work(work),
					      struct vmir_events, work);
	enum vmir_event_kind kind;
	u32 i, n, chunk;
	int ret;

	for (;;) {
		spin_lock(&ev->lock);
		n = ev->closed ? 0 : vmir_events_pop_locked(ev, &kind);
		spin_unlock(&ev->lock);
		if (!n)
			return;

		ret = vmir_genl_send_event(ev->dev, vmir_event_cmd[kind],
					   ev->batch, n);

		spin_lock(&ev->lock);
		for (i = 0; i < n; i++) {
			chunk = ev->batch[i];
			/* cancelled meanwhile: delivered or not, forget it */
			if (!__test_and_clear_bit(chunk, ev->inflight[kind]))
				continue;
			if (!ret)
				ev->sent++;
			else if (!__test_and_set_bit(chunk, ev->pending[kind]))
				ev->nr_pending[kind]++;
		}
		/* No helper: its registration sends all again. */
		if (ret && ret != -ENOTCONN) {
			ev->retries += n;
			if (!ev->closed)
				queue_delayed_work(ev->dev->wq, &ev->work,
						   VMIR_EVENT_RETRY);
		}
		spin_unlock(&ev->lock);
		if (ret)
			return;
	}
}
