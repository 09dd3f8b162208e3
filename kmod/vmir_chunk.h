/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir: the chunk state of a device, behind this interface.
 *
 * The maps (present, dirty, fetching, and during a commit the commit set
 * and the frozen chunks), the requests parked on them, the commit gate
 * and the event outbox live in struct vmir_chunks, which only
 * vmir_chunk.c sees. Counters are kept as the maps change, so a report
 * costs O(1) whatever the device size.
 *
 * Who calls what:
 *   vmir_blk.c   vmir_chunks_admit() for every request, and
 *                vmir_chunks_write_done() after a write it admitted;
 *                vmir_chunks_expire() from the timeout handler.
 *   vmir_genl.c  the helper's answers, the commit, the state segments,
 *                the report.
 *   vmir_main.c  create/destroy, shutdown when the disk goes away,
 *                resend when a helper registers.
 */
#ifndef VMIR_CHUNK_H
#define VMIR_CHUNK_H

#include <linux/types.h>

struct vmir_cmd;
struct vmir_device;
struct vmir_chunks;

/* Outcome of admitting a request against the chunk state. */
enum vmir_admit {
	VMIR_ADMIT_RUN,		/* all chunks usable: caller runs it */
	VMIR_ADMIT_PARKED,	/* parked: the chunk state now owns it */
	VMIR_ADMIT_FAIL,	/* device shutting down: caller fails it */
};

/* Counters reported in VMIR_ATTR_STATS. */
struct vmir_stats {
	u64 misses;
	u64 miss_waits;
	u64 fetched_chunks;
	u64 fetched_bytes;
	u64 fetch_errors;
	u64 fetch_lat_sum_ns;
	u64 fetch_lat_count;
	u64 timeouts;
	u64 capture_waits;
	u64 events_sent;
	u64 event_retries;
	u64 prefetches;
};

/* What GET_STATUS reports of the chunk state, read in O(1). */
struct vmir_chunks_report {
	u32 nr_present;
	u32 nr_dirty;
	u32 nr_fetching;
	u32 nr_parked;
	u32 nr_commit;		/* 0 without a commit */
	u32 nr_frozen;		/* 0 without a commit */
	bool committing;
	struct vmir_stats stats;
};

struct vmir_chunks *vmir_chunks_create(struct vmir_device *dev, u64 size,
				       u32 chunk_size);
void vmir_chunks_destroy(struct vmir_chunks *c);
u64 vmir_chunks_size(const struct vmir_chunks *c);
u32 vmir_chunks_chunk_size(const struct vmir_chunks *c);
u32 vmir_chunks_count(const struct vmir_chunks *c);

/* I/O path */
enum vmir_admit vmir_chunks_admit(struct vmir_chunks *c,
				  struct vmir_cmd *cmd, u64 pos, u64 len,
				  bool write);
void vmir_chunks_write_done(struct vmir_chunks *c);
bool vmir_chunks_all_present(struct vmir_chunks *c, u64 pos, u64 len);
void vmir_chunks_note_access(struct vmir_chunks *c, u64 pos, u64 len);
bool vmir_chunks_expire(struct vmir_chunks *c, struct vmir_cmd *cmd);

/* The helper's answers */
int vmir_chunk_ready(struct vmir_chunks *c, u32 chunk, int status);
int vmir_chunk_prefetch(struct vmir_chunks *c, u32 chunk);
int vmir_chunk_captured(struct vmir_chunks *c, u32 chunk);

/* The first-access order, for GET_ACCESS */
int vmir_chunks_access(struct vmir_chunks *c, u32 start, u32 *out, u32 max,
		       u32 *nr, u32 *lost);

/* Commit; the caller holds dev->ctl_lock */
int vmir_chunks_commit_begin(struct vmir_chunks *c, u32 *nr_commit);
int vmir_chunks_commit_end(struct vmir_chunks *c, int status);

/* State segments and the report */
int vmir_chunks_set_segment(struct vmir_chunks *c, u32 start,
			    const u8 *present, const u8 *dirty, u32 len);
bool vmir_chunks_get_segment(struct vmir_chunks *c, u32 start, u32 len,
			     u8 *present, u8 *dirty, u8 *commit);
void vmir_chunks_report(struct vmir_chunks *c, struct vmir_chunks_report *r);

/* The durable map (vmir_map.c) */
u32 vmir_chunks_changes(struct vmir_chunks *c);
u32 vmir_chunks_map_copy(struct vmir_chunks *c, u8 *present, u8 *dirty);

/* Lifetime */
void vmir_chunks_shutdown(struct vmir_chunks *c);
void vmir_chunks_resend(struct vmir_chunks *c);

#endif /* VMIR_CHUNK_H */
