// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Full-length file and socket I/O, directory fsync, zero tests and the
 * heap settings for chunk-sized buffers.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>

#include "vmir_util.h"

void vmir_heap_keep_buffers(size_t max_free)
{
	mallopt(M_MMAP_THRESHOLD, 2 * VMIR_DATA_MAX);
	mallopt(M_TRIM_THRESHOLD, max_free);
}

enum vmir_io_op {
	VMIR_IO_READ,
	VMIR_IO_WRITE,
	VMIR_IO_PREAD,
	VMIR_IO_PWRITE,
};

/*
 * The loop of the four calls below: move all len bytes, retry on EINTR,
 * -EIO when the file ends (or takes nothing) first. Only the reads store
 * through p.
 */
static int vmir_io_full(enum vmir_io_op op, int fd, uint8_t *p, size_t len,
			uint64_t off)
{
	ssize_t n;

	while (len) {
		switch (op) {
		case VMIR_IO_READ:
			n = read(fd, p, len);
			break;
		case VMIR_IO_WRITE:
			n = write(fd, p, len);
			break;
		case VMIR_IO_PREAD:
			n = pread(fd, p, len, (off_t)off);
			break;
		default:
			n = pwrite(fd, p, len, (off_t)off);
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

int vmir_write_full(int fd, const void *buf, size_t len)
{
	return vmir_io_full(VMIR_IO_WRITE, fd, (uint8_t *)buf, len, 0);
}

int vmir_read_full(int fd, void *buf, size_t len)
{
	return vmir_io_full(VMIR_IO_READ, fd, buf, len, 0);
}

int vmir_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	return vmir_io_full(VMIR_IO_PWRITE, fd, (uint8_t *)buf, len, off);
}

int vmir_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	return vmir_io_full(VMIR_IO_PREAD, fd, buf, len, off);
}

bool vmir_buf_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!len)
		return true;
	/* byte 0 is zero and every byte equals its successor */
	return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

int vmir_fsync_dir(const char *dir)
{
	int fd, ret = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}
