// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-helper: the durable map in the mirror file (format: struct
 * vmir_map_hdr in include/uapi/linux/vmir.h; declarations in state.h).
 *
 * The module writes it on FLUSH; the helper reads it to resume a mirror
 * whose node went down without a detach, and writes the first copy of an
 * attach (the state it hands to ADD_DEVICE) so that the copy on disk is
 * never older than what the device starts from.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state.h"
#include "vmir_util.h"

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32() and the kernel's
 * ~crc32_le(~0, ...)), one table built on first use.
 */
static uint32_t helper_crc32(const void *buf, size_t len)
{
	static uint32_t table[256];
	const uint8_t *p = buf;
	uint32_t crc = ~0U;
	size_t i;

	if (!table[1]) {
		for (uint32_t n = 0; n < 256; n++) {
			uint32_t c = n;

			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320U ^ (c >> 1) : c >> 1;
			table[n] = c;
		}
	}
	for (i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint64_t helper_map_offset(uint64_t size)
{
	return (size + 4095) & ~(uint64_t)4095;
}

uint64_t helper_map_end(const struct helper_mirror *m)
{
	return helper_map_offset(m->size) + 2 * VMIR_MAP_SLOT_BYTES(m->nchunks);
}

/* Read slot k into buf; true when it holds a copy whose crc checks out. */
static bool helper_map_slot(int fd, const struct helper_mirror *m,
			    unsigned int k, uint8_t *buf)
{
	uint64_t slot = VMIR_MAP_SLOT_BYTES(m->nchunks);
	struct vmir_map_hdr *h = (struct vmir_map_hdr *)buf;
	uint64_t mb;
	uint32_t crc;

	if (vmir_pread_full(fd, buf, slot, helper_map_offset(m->size) +
			    k * slot))
		return false;
	if (le64toh(h->magic) != VMIR_MAP_MAGIC ||
	    le32toh(h->format) != VMIR_MAP_FORMAT ||
	    le32toh(h->hdr_len) != sizeof(*h))
		return false;
	mb = le32toh(h->map_bytes);
	if (sizeof(*h) + 2 * mb > slot)
		return false;
	crc = le32toh(h->crc);
	h->crc = 0;
	if (helper_crc32(buf, sizeof(*h) + 2 * mb) != crc)
		return false;
	h->crc = htole32(crc);
	return true;
}

int helper_map_load(int fd, const struct helper_mirror *m, uint8_t *present,
		    uint8_t *dirty, uint64_t *gen, char *msg, size_t msglen)
{
	uint64_t slot = VMIR_MAP_SLOT_BYTES(m->nchunks), g[2] = { 0, 0 };
	size_t mb = helper_map_bytes(m->nchunks);
	const struct vmir_map_hdr *h;
	uint8_t *buf[2];
	bool ok[2];
	unsigned int k, best;
	int ret;

	*gen = 0;
	buf[0] = malloc(slot);
	buf[1] = malloc(slot);
	if (!buf[0] || !buf[1]) {
		snprintf(msg, msglen, "out of memory");
		ret = -ENOMEM;
		goto out_free;
	}
	for (k = 0; k < 2; k++) {
		ok[k] = helper_map_slot(fd, m, k, buf[k]);
		h = (const struct vmir_map_hdr *)buf[k];
		/* a copy in the wrong slot is not one the module wrote */
		if (ok[k] && (le64toh(h->generation) & 1) != k)
			ok[k] = false;
		if (ok[k])
			g[k] = le64toh(h->generation);
	}
	if (!ok[0] && !ok[1]) {
		ret = 0;
		goto out_free;
	}
	best = (!ok[0] || (ok[1] && g[1] > g[0])) ? 1 : 0;
	h = (const struct vmir_map_hdr *)buf[best];
	*gen = g[best];
	if (le64toh(h->size) != m->size ||
	    le32toh(h->chunk_size) != m->chunk_size ||
	    le32toh(h->nchunks) != m->nchunks ||
	    le32toh(h->map_bytes) != mb ||
	    le32toh(h->version) != m->version ||
	    strncmp(h->image, m->image, sizeof(h->image))) {
		snprintf(msg, msglen,
			 "the mirror's map (generation %" PRIu64 ") is that of %.*s@%u (%" PRIu64 " bytes, chunk %u), not of %s@%u",
			 *gen, (int)strnlen(h->image, sizeof(h->image)),
			 h->image, le32toh(h->version), le64toh(h->size),
			 le32toh(h->chunk_size), m->image, m->version);
		ret = -EEXIST;
		goto out_free;
	}
	memcpy(present, h + 1, mb);
	memcpy(dirty, (const uint8_t *)(h + 1) + mb, mb);
	ret = 1;
out_free:
	free(buf[0]);
	free(buf[1]);
	return ret;
}

int helper_map_save(int fd, const struct helper_mirror *m,
		    const uint8_t *present, const uint8_t *dirty, uint64_t gen)
{
	uint64_t slot = VMIR_MAP_SLOT_BYTES(m->nchunks);
	size_t mb = helper_map_bytes(m->nchunks);
	struct vmir_map_hdr *h;
	uint8_t *buf;
	int ret;

	buf = calloc(1, slot);
	if (!buf)
		return -ENOMEM;
	h = (struct vmir_map_hdr *)buf;
	h->magic = htole64(VMIR_MAP_MAGIC);
	h->format = htole32(VMIR_MAP_FORMAT);
	h->hdr_len = htole32(sizeof(*h));
	h->generation = htole64(gen);
	h->size = htole64(m->size);
	h->chunk_size = htole32(m->chunk_size);
	h->nchunks = htole32((uint32_t)m->nchunks);
	h->version = htole32(m->version);
	h->map_bytes = htole32((uint32_t)mb);
	helper_copy(h->image, sizeof(h->image), m->image);
	memcpy(h + 1, present, mb);
	memcpy(buf + sizeof(*h) + mb, dirty, mb);
	h->crc = htole32(helper_crc32(buf, sizeof(*h) + 2 * mb));
	ret = vmir_pwrite_full(fd, buf, slot, helper_map_offset(m->size) +
			       (gen & 1) * slot);
	if (!ret && fdatasync(fd))
		ret = -errno;
	free(buf);
	return ret;
}
