// SPDX-License-Identifier: GPL-2.0
/*
 * Drives libvmir against a running cluster ($VMIR_CONF): a commit built on
 * a version that is no longer the latest is refused with -ESTALE and
 * publishes nothing; the same commit rebuilt on the latest succeeds and
 * changes exactly the committed chunk.
 *
 * usage: publish_race IMAGE   (IMAGE must exist with >= 2 chunks)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libvmir.h"

struct fill {
	unsigned char byte;
	uint32_t len;
};

static int fill_chunk(void *arg, uint64_t idx, void *buf)
{
	struct fill *f = arg;

	memset(buf, f->byte, f->len);
	return 0;
}

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "publish_race: " __VA_ARGS__);		\
		fprintf(stderr, " (%s)\n", vmir_client_error(c));	\
		exit(1);						\
	}								\
} while (0)

int main(int argc, char **argv)
{
	struct vmir_client *c = NULL;
	struct vmir_version *a, *b;
	struct vmir_version_info info, latest;
	struct vmir_version_info *vers;
	size_t nvers, nvers2;
	uint64_t idx = 1;
	struct fill f;
	void *buf;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: publish_race IMAGE\n");
		return 2;
	}
	ret = vmir_client_open(NULL, &c);
	if (ret) {
		fprintf(stderr, "publish_race: cannot open client: %s\n",
			strerror(-ret));
		return 1;
	}
	ret = vmir_version_open(c, argv[1], 0, &a);
	CHECK(!ret, "open %s", argv[1]);
	ret = vmir_version_open(c, argv[1], 0, &b);
	CHECK(!ret, "open %s again", argv[1]);
	f.len = vmir_version_get_info(a)->chunk_size;

	/* b wins the race */
	f.byte = 0xbb;
	ret = vmir_version_commit(b, &idx, 1, fill_chunk, &f, NULL, &latest);
	CHECK(!ret, "first commit");
	ret = vmir_image_versions(c, argv[1], &vers, &nvers);
	CHECK(!ret, "versions");
	free(vers);

	/* a still builds on the old version: refused, nothing published */
	f.byte = 0xaa;
	ret = vmir_version_commit(a, &idx, 1, fill_chunk, &f, NULL, &info);
	CHECK(ret == -ESTALE, "stale commit returned %d, expected -ESTALE",
	      ret);
	ret = vmir_image_versions(c, argv[1], &vers, &nvers2);
	CHECK(!ret, "versions");
	free(vers);
	CHECK(nvers2 == nvers, "stale commit published a version");
	CHECK(vmir_version_get_info(a)->version + 1 == latest.version,
	      "stale commit moved the handle");

	/* the winner's content is what the image holds */
	buf = malloc(f.len);
	ret = vmir_version_read(b, &idx, 1, &buf);
	CHECK(!ret, "read back");
	CHECK(((unsigned char *)buf)[0] == 0xbb &&
	      ((unsigned char *)buf)[f.len - 1] == 0xbb, "wrong content");

	/* rebuilt on the latest version, the commit goes through */
	vmir_version_close(a);
	ret = vmir_version_open(c, argv[1], 0, &a);
	CHECK(!ret, "reopen");
	ret = vmir_version_commit(a, &idx, 1, fill_chunk, &f, NULL, &info);
	CHECK(!ret, "commit on latest");
	CHECK(info.version == latest.version + 1, "version %u after %u",
	      info.version, latest.version);
	printf("stale publish refused; %s@%u published\n", info.image,
	       info.version);
	free(buf);
	vmir_version_close(a);
	vmir_version_close(b);
	vmir_client_close(c);
	return 0;
}
