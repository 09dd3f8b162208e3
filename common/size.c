// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Sizes on command lines and in the configuration: "256K", "1.5G"
 * (binary units), parsed and formatted.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>

#include "vmir_util.h"

/*
 * "123", "256K", "1M", "2g", "1.5G", "4KiB", "4KB", "512B". A fractional
 * part needs a unit and must give a whole number of bytes.
 */
int vmir_size_parse(const char *s, uint64_t *out)
{
	uint64_t ip = 0, frac = 0, fdiv = 1, mult = 1, v, fv;
	const char *p = s;
	unsigned int shift = 0;
	bool have_frac = false;

	if (!s || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (__builtin_mul_overflow(ip, 10, &ip) ||
		    __builtin_add_overflow(ip, (uint64_t)(*p - '0'), &ip))
			return -ERANGE;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		have_frac = true;
		for (; isdigit((unsigned char)*p); p++) {
			if (fdiv >= 1000000000000ull)
				return -EINVAL;	/* absurd precision */
			frac = frac * 10 + (uint64_t)(*p - '0');
			fdiv *= 10;
		}
	}
	switch (*p) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default: break;
	}
	if (shift) {
		p++;
		if ((p[0] == 'i' || p[0] == 'I') && (p[1] == 'b' || p[1] == 'B'))
			p += 2;
		else if (p[0] == 'b' || p[0] == 'B')
			p++;
	} else if (*p == 'b' || *p == 'B') {
		p++;
	}
	if (*p)
		return -EINVAL;
	if (have_frac && !shift)
		return -EINVAL;
	mult = 1ull << shift;
	if (__builtin_mul_overflow(ip, mult, &v))
		return -ERANGE;
	if (have_frac) {
		/* frac < fdiv <= 1e12 and mult <= 2^40: fits in 128 bits */
		unsigned __int128 f = (unsigned __int128)frac * mult;

		if (f % fdiv)
			return -EINVAL;
		fv = (uint64_t)(f / fdiv);
		if (__builtin_add_overflow(v, fv, &v))
			return -ERANGE;
	}
	*out = v;
	return 0;
}

void vmir_size_format(uint64_t v, char *out, size_t outlen)
{
	static const char units[] = "KMGT";
	unsigned int u;
	uint64_t base;

	if (!outlen)
		return;
	if (v < 1024) {
		snprintf(out, outlen, "%llu", (unsigned long long)v);
		return;
	}
	for (u = 0; u < 3 && v >= (1ull << (10 * (u + 2))); u++)
		;
	base = 1ull << (10 * (u + 1));
	if (v % base == 0)
		snprintf(out, outlen, "%llu%c",
			 (unsigned long long)(v / base), units[u]);
	else
		snprintf(out, outlen, "%.1f%c", (double)v / (double)base,
			 units[u]);
}
