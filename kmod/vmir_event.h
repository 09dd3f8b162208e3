/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir: the event outbox of a device, used by the chunk state.
 *
 * Events are not sent from the I/O path: the chunk state posts them here
 * (a pending bit per chunk and kind), and a work item on dev->wq delivers
 * them to the registered helper through vmir_genl_send_event(), as many
 * chunks of one kind per message as are pending (up to VMIR_EVENT_BATCH),
 * so that a burst of misses costs the helper one receive. An event
 * that cannot be delivered stays pending: until a helper registers (which
 * posts every outstanding event again, vmir_events_resend()), or, when
 * the helper's socket is full, for a retry a moment later. An event the
 * chunk state cancels while it is being delivered is not retried.
 */
#ifndef VMIR_EVENT_H
#define VMIR_EVENT_H

#include <linux/types.h>

struct vmir_device;
struct vmir_events;

enum vmir_event_kind {
	VMIR_EVENT_MISS,	/* VMIR_CMD_MISS: fetch the chunk */
	VMIR_EVENT_CAPTURE,	/* VMIR_CMD_CAPTURE_NEEDED: copy it out */
	VMIR_NR_EVENT_KINDS,
};

struct vmir_events *vmir_events_create(struct vmir_device *dev,
				       u32 nchunks);
void vmir_events_destroy(struct vmir_events *ev);
void vmir_event_post(struct vmir_events *ev, enum vmir_event_kind kind,
		     u32 chunk);
void vmir_event_cancel(struct vmir_events *ev, enum vmir_event_kind kind,
		       u32 chunk);
void vmir_events_cancel_all(struct vmir_events *ev,
			    enum vmir_event_kind kind);
void vmir_events_resend(struct vmir_events *ev, enum vmir_event_kind kind,
			const unsigned long *chunks, u32 nr);
void vmir_events_close(struct vmir_events *ev);
void vmir_events_report(struct vmir_events *ev, u64 *sent, u64 *retries);

#endif /* VMIR_EVENT_H */
