/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vmir: lazily fetched, snapshot-able block devices (/dev/vmirN).
 *
 * Generic netlink interface between the vmir kernel module and userspace
 * (vmir-helper, vmirctl). This one file is included by both sides:
 *   kernel module:  #include <uapi/linux/vmir.h>  (kmod/Kbuild adds -I)
 *   userspace:      #include "uapi/linux/vmir.h"   (built with -Iinclude)
 *
 * Family "vmir" (VMIR_GENL_NAME), version VMIR_GENL_VERSION; resolve it
 * with genl_ctrl_resolve(). No multicast groups: events are unicast to the
 * registered helper. Every command needs CAP_SYS_ADMIN (checked before
 * anything else) and CAP_NET_ADMIN (GENL_ADMIN_PERM), else EPERM.
 * The family is netns aware: a device belongs to the network namespace of
 * the socket that added it and is only visible (GET_STATUS, LIST, ...) and
 * only reported (events) in that namespace. When a namespace goes away its
 * devices move to the initial namespace, with their parked requests intact.
 *
 * Terms
 *   chunk       chunk i covers image bytes [i * chunk_size,
 *               min((i + 1) * chunk_size, size)); nchunks =
 *               DIV_ROUND_UP(size, chunk_size) <= VMIR_MAX_CHUNKS.
 *   mirror      a regular file opened O_RDWR by userspace (no O_APPEND, no
 *               O_DIRECT) and passed by fd in ADD_DEVICE (the module sets
 *               O_NOATIME on it: reading it must not dirty its inode);
 *               chunk i lives at file offset i * chunk_size. Holes and
 *               bytes past EOF read as zeros; best ftruncate() it to the
 *               image size once. The disk capacity is size rounded up to
 *               512; the disk has no partition scan (adding it reads
 *               nothing).
 *   present     the mirror holds valid data for the chunk.
 *   dirty       the chunk was written since the version it came from
 *               (dirty implies present).
 *   fetching    a MISS event for the chunk is outstanding: the helper owns
 *               the chunk's byte range in the mirror until it answers.
 *   commit set  during a commit: the chunks that were dirty at
 *               COMMIT_BEGIN (reported as MAP_COMMIT).
 *   frozen      a chunk of the commit set not yet reported captured;
 *               writes to it wait.
 *
 * Chunk lists (VMIR_ATTR_CHUNKS) carry several chunks of one device in one
 * message, so that the per-chunk traffic of the data path (misses, their
 * answers, read-ahead claims, captures) costs one message per batch, not
 * one per chunk: an NLA_BINARY array of __u32 chunk indexes, 1 to
 * VMIR_CHUNKS_MAX of them (its length a multiple of 4). A request whose
 * list holds an index >= nchunks is refused (ERANGE) before any of it
 * takes effect; otherwise each chunk is handled on its own, and the ack
 * reports the first chunk that could not be (its index in the extended
 * ack message). The helper sends its answers without NLM_F_ACK: a success
 * costs no reply, a failure still comes back as an error message.
 *
 * Chunk bitmaps (MAP_PRESENT, MAP_DIRTY, MAP_COMMIT) travel in segments,
 * because one netlink attribute holds less than 64 KiB. A segment is
 * VMIR_ATTR_MAP_START (chunk index of bit 0, a multiple of 8) plus one
 * NLA_BINARY per map of at most VMIR_MAP_SEG_MAX bytes, all maps of one
 * message the same length. Chunk START + 8 * j + b is bit b (LSB first)
 * of byte j. A segment must not reach past DIV_ROUND_UP(nchunks, 8) bytes
 * from chunk 0; bits past nchunks are zero.
 *
 * Helper protocol (one helper per network namespace)
 *   1. HELPER_REGISTER from the socket that will receive events. The module
 *      then (re)sends a MISS for every fetching chunk and a CAPTURE_NEEDED
 *      for every frozen chunk a write waits on, of every device in the
 *      namespace: a registering helper must hold no state from before.
 *   2. MISS(dev, chunks): fill each chunk's byte range in the mirror (pwrite
 *      the data, or FALLOC_FL_PUNCH_HOLE for a zero chunk: the range may
 *      hold stale bytes), then CHUNK_READY(dev, chunks, status 0), for as
 *      many chunks at once as are done. On failure CHUNK_READY with status
 *      -errno: the requests waiting for those chunks fail with EIO, and the
 *      chunks stay missing (a later read asks again). Each fetch is named
 *      in exactly one MISS, however many requests wait. The helper writes a
 *      chunk's range only between MISS and its answer.
 *   3. Without a helper (none registered yet, or its socket closed), requests
 *      that need a fetch or a capture stay parked; after the device timeout
 *      (VMIR_ATTR_TIMEOUT_MS, counted from the request's issue) a parked
 *      request fails with EIO. Requests served from the mirror never do.
 *   4. PREFETCH(dev, chunks): the helper claims missing chunks no request
 *      asked for yet (read-ahead). The reply (PREFETCH: DEV_ID, CHUNKS)
 *      lists the chunks claimed: each is fetching exactly as after a MISS
 *      (the helper owns its range in the mirror, requests touching it wait,
 *      and the helper answers CHUNK_READY). Chunks present or already being
 *      fetched are left out; the list may be empty (no CHUNKS attribute).
 *   If an event cannot be delivered (socket receive buffer full, recv()
 *   then reports ENOBUFS), the module retries it later: nothing is lost.
 *
 * Commit protocol (publishing the device content at one instant, live)
 *   1. COMMIT_BEGIN(dev): waits for writes in progress, then atomically
 *      moves the dirty set into the commit set (all dirty bits cleared).
 *      Reply: VMIR_ATTR_NR_COMMIT. EBUSY if a commit is already active.
 *   2. GET_STATE(dev) dump: MAP_COMMIT gives the commit set; it does not
 *      change until COMMIT_END. Read each chunk of the set from the mirror
 *      (the bytes stay as they were at COMMIT_BEGIN until reported) and send
 *      CHUNK_CAPTURED(dev, chunks) as soon as their bytes are copied out.
 *   3. A write, discard or write-zeroes touching a frozen chunk waits; the
 *      module names each such chunk once in a CAPTURE_NEEDED(dev, chunks).
 *      Capture
 *      those first. Chunks not in the commit set are never blocked.
 *   4. COMMIT_END(dev, status 0, optional VERSION): the commit set is
 *      forgotten, waiting writes proceed, VERSION becomes the device version
 *      (and IMAGE its image name, for a commit published as a new image).
 *      COMMIT_END(dev, status -errno): the commit set is merged back into
 *      the dirty set (nothing is lost; a later commit publishes it again).
 *   Chunks written during the commit are dirty afterwards. Reads never wait
 *   for a commit.
 *
 * State save and restore (re-attaching a mirror that survived a detach)
 *   Save: STOP_DEVICE (parked requests fail, the disk goes away once the
 *   requests in flight have completed: no write can follow, the dirty map
 *   is final; present only gains chunks whose outstanding MISS the helper
 *   still answers), GET_STATE dump
 *   (present + dirty, and MAP_COMMIT while a commit is active: those chunks
 *   are dirty too), then REMOVE_DEVICE. Reading the state of a device that
 *   is still live leaves a window in which a write is not in the dump. Restore: ADD_DEVICE with VMIR_ADD_F_DEFER_START and the
 *   first segment inline, SET_STATE for further segments, START_DEVICE. A
 *   small device restores in one ADD_DEVICE (segment at 0, no flag).
 *   No I/O reaches the device before START_DEVICE, so no fetch can
 *   overwrite a dirty chunk whose bit is not restored yet.
 *
 * Access order (what learned prefetch learns from)
 *   From ADD_DEVICE on, the module records the order in which chunks are
 *   first touched by a read, write, discard or write-zeroes, hits
 *   included: the first request touching chunk i appends i, once. At most
 *   VMIR_ACCESS_MAX chunks are recorded; first accesses past that are
 *   only counted (NR_ACCESS_LOST). GET_ACCESS(dev, [ACCESS_START]) returns
 *   NR_ACCESSED (chunks recorded so far) and, in CHUNKS, the recorded
 *   chunks of rank ACCESS_START on (0 when absent), at most
 *   VMIR_CHUNKS_MAX per reply: ask again from ACCESS_START + the count
 *   received. CHUNKS may end short of NR_ACCESSED while a request is
 *   still recording its chunk, and is absent when nothing is left.
 *   ACCESS_START past NR_ACCESSED is refused (ERANGE).
 *
 * Message layouts (-> request attributes, <- reply attributes; [] optional)
 *
 *   HELPER_REGISTER   -> [FLAGS: VMIR_REGISTER_F_*]
 *   HELPER_UNREGISTER -> (none)
 *   ADD_DEVICE        -> IMAGE, VERSION, SIZE, CHUNK_SIZE, MIRROR_FD,
 *                        [TIMEOUT_MS], [FLAGS: VMIR_ADD_F_*],
 *                        [MAP_START, MAP_PRESENT, [MAP_DIRTY]]
 *                     <- DEV_ID, DISK_NAME, NCHUNKS
 *   SET_STATE         -> DEV_ID, MAP_START, MAP_PRESENT, [MAP_DIRTY]
 *                        (device in VMIR_DEV_STATE_SETUP only; the segment
 *                        replaces the covered bits)
 *   START_DEVICE      -> DEV_ID (SETUP -> LIVE: the disk appears)
 *   STOP_DEVICE       -> DEV_ID (SETUP or LIVE -> STOPPED: parked requests
 *                        fail with EIO, the disk goes away after the requests
 *                        in flight; the chunk state stays for GET_STATE.
 *                        Safe with I/O in flight and the disk open)
 *   REMOVE_DEVICE     -> DEV_ID (any state: as STOP_DEVICE, then the device
 *                        and its state are gone)
 *   GET_STATUS        -> DEV_ID       <- device info (below)
 *   LIST              dump, no attributes; one message per device of the
 *                     caller's namespace, each a device info
 *   GET_STATE         dump -> DEV_ID  <- per message: DEV_ID, NCHUNKS,
 *                        MAP_START, MAP_PRESENT, MAP_DIRTY, [MAP_COMMIT]
 *                        (MAP_COMMIT while a commit is active)
 *   CHUNK_READY       -> DEV_ID, CHUNKS, STATUS (0 or -errno, for all)
 *   PREFETCH          -> DEV_ID, CHUNKS   <- DEV_ID, [CHUNKS] (claimed)
 *   GET_ACCESS        -> DEV_ID, [ACCESS_START]
 *                     <- DEV_ID, NR_ACCESSED, NR_ACCESS_LOST, [CHUNKS]
 *   COMMIT_BEGIN      -> DEV_ID       <- DEV_ID, NR_COMMIT
 *   CHUNK_CAPTURED    -> DEV_ID, CHUNKS
 *   COMMIT_END        -> DEV_ID, STATUS (0 or -errno), [VERSION, [IMAGE]]
 *   SET_VERSION       -> DEV_ID, VERSION, [IMAGE]
 *   MISS              event <- DEV_ID, CHUNKS
 *   CAPTURE_NEEDED    event <- DEV_ID, CHUNKS
 *
 *   device info:
 *   DEV_ID, DISK_NAME, IMAGE, VERSION, SIZE, CHUNK_SIZE, NCHUNKS,
 *   TIMEOUT_MS, STATE, DEV_FLAGS, NR_PRESENT, NR_DIRTY, NR_FETCHING,
 *   NR_PARKED, [NR_COMMIT, NR_FROZEN while a commit is active],
 *   STATS
 *     `-- STAT_MISSES, STAT_MISS_WAITS, STAT_FETCHED_CHUNKS,
 *         STAT_FETCHED_BYTES, STAT_FETCH_ERRORS, STAT_FETCH_LAT_SUM_NS,
 *         STAT_FETCH_LAT_COUNT, STAT_TIMEOUTS, STAT_CAPTURE_WAITS,
 *         STAT_EVENTS_SENT, STAT_EVENT_RETRIES, STAT_PREFETCHES,
 *         STAT_HITS_INLINE, STAT_HITS_NOWAIT, STAT_HITS_WORKER
 *         (all u64)
 *
 * Errors (negative errno in the netlink ack; with NETLINK_EXT_ACK set the
 * ack carries a message, or NLMSGERR_ATTR_MISS_TYPE for a missing
 * attribute): EPERM no CAP_SYS_ADMIN; EINVAL missing or malformed
 * attribute; ENODEV no such device in the caller's namespace; ERANGE chunk
 * index >= nchunks (nothing of the request took effect), ACCESS_START past
 * the recorded accesses, a value out of
 * its range (VERSION 0, a CHUNKS list longer than VMIR_CHUNKS_MAX); EBADF fd not open; EBUSY helper already registered,
 * commit already active, device not in the state the command needs
 * (SET_STATE/START_DEVICE on a started or stopped device, COMMIT_BEGIN on a
 * stopped one); EALREADY STOP_DEVICE of a stopped device;
 * ENOENT no MISS outstanding for a chunk (CHUNK_READY), chunk not in the
 * commit set or no commit active (CHUNK_CAPTURED, COMMIT_END); ENODEV also
 * PREFETCH on a stopping device; ENOSPC too many devices;
 * EOPNOTSUPP a userspace message with an event command.
 */
#ifndef _UAPI_LINUX_VMIR_H
#define _UAPI_LINUX_VMIR_H

#include <linux/types.h>

#define VMIR_GENL_NAME		"vmir"
#define VMIR_GENL_VERSION	2

/*
 * Limits checked on every message. Userspace takes the limits it shares
 * with the module from here, once: an image name has the same limit in
 * IMAGE as on the wire to the version server (1..128 bytes), and so has a
 * chunk size.
 */
#define VMIR_NAME_MAX		(128 + 1)	/* IMAGE incl. NUL */
#define VMIR_CHUNK_SIZE_MIN	4096U		/* power of two in [MIN, MAX] */
#define VMIR_CHUNK_SIZE_MAX	(4U << 20)
#define VMIR_MAX_CHUNKS		(1U << 24)	/* per device */
#define VMIR_MAP_SEG_MAX	32768U		/* bytes per map attribute */
#define VMIR_CHUNKS_MAX		4096U		/* chunks per CHUNKS list */
#define VMIR_ACCESS_MAX		65536U		/* access order entries */
#define VMIR_TIMEOUT_MS_DEFAULT	30000U
#define VMIR_TIMEOUT_MS_MIN	100U
#define VMIR_TIMEOUT_MS_MAX	86400000U	/* one day */

/* VMIR_ATTR_FLAGS of HELPER_REGISTER */
#define VMIR_REGISTER_F_TAKEOVER (1ULL << 0)	/* replace the current helper */
#define VMIR_REGISTER_F_ALL	VMIR_REGISTER_F_TAKEOVER

/* VMIR_ATTR_FLAGS of ADD_DEVICE */
#define VMIR_ADD_F_DEFER_START	(1ULL << 0)	/* stay in SETUP until START */
#define VMIR_ADD_F_READ_ONLY	(1ULL << 1)	/* read-only disk */
#define VMIR_ADD_F_ALL		(VMIR_ADD_F_DEFER_START | VMIR_ADD_F_READ_ONLY)

/* VMIR_ATTR_DEV_FLAGS of a device info */
#define VMIR_DEV_F_READ_ONLY	(1ULL << 0)
#define VMIR_DEV_F_COMMIT	(1ULL << 1)	/* a commit is active */
#define VMIR_DEV_F_HELPER	(1ULL << 2)	/* a helper is registered */
#define VMIR_DEV_F_ALL		(VMIR_DEV_F_READ_ONLY | VMIR_DEV_F_COMMIT | \
				 VMIR_DEV_F_HELPER)

/* VMIR_ATTR_STATE: device lifetime as seen from userspace */
enum vmir_dev_state {
	VMIR_DEV_STATE_UNSPEC,
	VMIR_DEV_STATE_SETUP,		/* added, no disk yet: SET_STATE ok */
	VMIR_DEV_STATE_LIVE,		/* /dev/vmirN serves I/O */
	VMIR_DEV_STATE_REMOVING,	/* REMOVE_DEVICE in progress */
	VMIR_DEV_STATE_STOPPED,		/* no disk; state kept for GET_STATE */
};

enum vmir_genl_cmd {
	VMIR_CMD_UNSPEC,
	VMIR_CMD_HELPER_REGISTER,
	VMIR_CMD_HELPER_UNREGISTER,
	VMIR_CMD_ADD_DEVICE,
	VMIR_CMD_SET_STATE,
	VMIR_CMD_START_DEVICE,
	VMIR_CMD_REMOVE_DEVICE,
	VMIR_CMD_GET_STATUS,
	VMIR_CMD_LIST,
	VMIR_CMD_GET_STATE,
	VMIR_CMD_CHUNK_READY,
	VMIR_CMD_COMMIT_BEGIN,
	VMIR_CMD_CHUNK_CAPTURED,
	VMIR_CMD_COMMIT_END,
	VMIR_CMD_SET_VERSION,
	VMIR_CMD_MISS,			/* event, kernel -> helper */
	VMIR_CMD_CAPTURE_NEEDED,	/* event, kernel -> helper */
	VMIR_CMD_STOP_DEVICE,
	VMIR_CMD_PREFETCH,
	VMIR_CMD_GET_ACCESS,

	__VMIR_CMD_MAX,
};
#define VMIR_CMD_MAX (__VMIR_CMD_MAX - 1)

enum vmir_genl_attr {
	VMIR_ATTR_UNSPEC,
	VMIR_ATTR_PAD,			/* alignment of u64 attributes */
	VMIR_ATTR_DEV_ID,		/* u32: N of /dev/vmirN */
	VMIR_ATTR_DISK_NAME,		/* string: "vmirN" */
	VMIR_ATTR_IMAGE,		/* string: image name */
	VMIR_ATTR_VERSION,		/* u32: image version, >= 1 */
	VMIR_ATTR_SIZE,			/* u64: image size in bytes, > 0 */
	VMIR_ATTR_CHUNK_SIZE,		/* u32: bytes, power of two */
	VMIR_ATTR_NCHUNKS,		/* u32 */
	VMIR_ATTR_MIRROR_FD,		/* u32: fd in the sender's table */
	VMIR_ATTR_TIMEOUT_MS,		/* u32: parked request timeout */
	VMIR_ATTR_FLAGS,		/* u64: VMIR_REGISTER_F_* / VMIR_ADD_F_* */
	VMIR_ATTR_CHUNKS,		/* binary: __u32 chunk indexes */
	VMIR_ATTR_STATUS,		/* s32: 0 or -errno */
	VMIR_ATTR_MAP_START,		/* u32: chunk of bit 0, multiple of 8 */
	VMIR_ATTR_MAP_PRESENT,		/* binary: present bits */
	VMIR_ATTR_MAP_DIRTY,		/* binary: dirty bits */
	VMIR_ATTR_MAP_COMMIT,		/* binary: commit set bits */
	VMIR_ATTR_STATE,		/* u32: enum vmir_dev_state */
	VMIR_ATTR_DEV_FLAGS,		/* u64: VMIR_DEV_F_* */
	VMIR_ATTR_NR_PRESENT,		/* u32: chunks present */
	VMIR_ATTR_NR_DIRTY,		/* u32: chunks dirty */
	VMIR_ATTR_NR_FETCHING,		/* u32: chunks with a MISS outstanding */
	VMIR_ATTR_NR_PARKED,		/* u32: requests waiting */
	VMIR_ATTR_NR_COMMIT,		/* u32: chunks in the commit set */
	VMIR_ATTR_NR_FROZEN,		/* u32: commit chunks not captured */
	VMIR_ATTR_STATS,		/* nested: VMIR_STAT_* */
	VMIR_ATTR_MAP_OFFSET,		/* u64: durable map's place in the mirror */
	VMIR_ATTR_MAP_GEN,		/* u64: generation of the map on disk */
	VMIR_ATTR_ACCESS_START,		/* u32: first rank of a GET_ACCESS */
	VMIR_ATTR_NR_ACCESSED,		/* u32: chunks in the access order */
	VMIR_ATTR_NR_ACCESS_LOST,	/* u32: first accesses not recorded */

	__VMIR_ATTR_MAX,
};
#define VMIR_ATTR_MAX (__VMIR_ATTR_MAX - 1)

/* Nested in VMIR_ATTR_STATS; all u64, counted since ADD_DEVICE. */
enum vmir_genl_stat {
	VMIR_STAT_UNSPEC,
	VMIR_STAT_PAD,
	VMIR_STAT_MISSES,		/* MISS events generated (fetches) */
	VMIR_STAT_MISS_WAITS,		/* requests that waited for a fetch */
	VMIR_STAT_FETCHED_CHUNKS,	/* CHUNK_READY with status 0 */
	VMIR_STAT_FETCHED_BYTES,	/* image bytes of those chunks */
	VMIR_STAT_FETCH_ERRORS,		/* CHUNK_READY with status < 0 */
	VMIR_STAT_FETCH_LAT_SUM_NS,	/* ns from first wait to CHUNK_READY */
	VMIR_STAT_FETCH_LAT_COUNT,	/* fetches in that sum */
	VMIR_STAT_TIMEOUTS,		/* requests failed by the timeout */
	VMIR_STAT_CAPTURE_WAITS,	/* writes that waited for a capture */
	VMIR_STAT_EVENTS_SENT,		/* MISS + CAPTURE_NEEDED delivered */
	VMIR_STAT_EVENT_RETRIES,	/* deliveries retried or re-sent */
	VMIR_STAT_PREFETCHES,		/* chunks claimed by PREFETCH */
	/*
	 * Requests served from the mirror without waiting for a chunk (hits),
	 * by where: in the submitter's context (INLINE); in a context that may
	 * not wait for mirror I/O, from the page cache without waiting
	 * (NOWAIT); handed off to the device's worker (WORKER).
	 */
	VMIR_STAT_HITS_INLINE,
	VMIR_STAT_HITS_NOWAIT,
	VMIR_STAT_HITS_WORKER,
	VMIR_STAT_MAP_COMMITS,		/* durable map copies written */

	__VMIR_STAT_MAX,
};
#define VMIR_STAT_MAX (__VMIR_STAT_MAX - 1)

/*
 * The durable map: the chunk state, kept in the mirror file itself so that
 * what a FLUSH acknowledged survives a crash of the node.
 *
 * ADD_DEVICE with VMIR_ATTR_MAP_OFFSET (a multiple of 4096, at or past the
 * image size rounded up to 4096) keeps two slots there, each
 * VMIR_MAP_SLOT_BYTES(nchunks) long: slot 0 at the offset, slot 1 right
 * after it. A slot is a struct vmir_map_hdr followed by the present bits
 * and then the dirty bits, map_bytes each (bit i of byte j is chunk
 * 8 * j + i), all little-endian. Slot (generation & 1) holds generation
 * `generation`; the valid slot (magic, format, crc) with the higher
 * generation is the map. crc is the CRC-32 (IEEE 802.3, as zlib's crc32)
 * of the header with crc set to 0, then both bitmaps.
 *
 * The module writes the next generation into the other slot, after an
 * fsync of the mirror's data and followed by an fsync of the slot, when a
 * FLUSH or a FUA write finds the maps changed since the last copy, and at
 * COMMIT_END. Chunks of an active commit are written as dirty. So after a
 * crash the map says, for every chunk, what it was at the last completed
 * FLUSH: dirty chunks hold what the device held then; a present chunk
 * that is not dirty held the version's data then, but may have been
 * written since (unflushed), so userspace checks it against the version
 * before trusting it. VMIR_ATTR_MAP_GEN gives the generation userspace
 * wrote last (0: none); the module continues from it.
 */
#define VMIR_MAP_MAGIC		0x3150414d52494d56ULL	/* "VMIRMAP1" */
#define VMIR_MAP_FORMAT		1U

struct vmir_map_hdr {
	__le64 magic;
	__le32 format;		/* VMIR_MAP_FORMAT */
	__le32 hdr_len;		/* sizeof(struct vmir_map_hdr) */
	__le64 generation;
	__le64 size;		/* image bytes */
	__le32 chunk_size;
	__le32 nchunks;
	__le32 version;		/* the version the dirty bits are against */
	__le32 map_bytes;	/* DIV_ROUND_UP(nchunks, 8) */
	__le32 crc;
	__le32 reserved;	/* 0 */
	char image[VMIR_NAME_MAX];	/* NUL-terminated */
	__u8 pad[7];		/* 0; the header is 192 bytes */
};

#define VMIR_MAP_BYTES(nchunks)	(((__u64)(nchunks) + 7) / 8)
#define VMIR_MAP_SLOT_BYTES(nchunks) \
	((sizeof(struct vmir_map_hdr) + 2 * VMIR_MAP_BYTES(nchunks) + 4095) & \
	 ~(__u64)4095)

#endif /* _UAPI_LINUX_VMIR_H */
