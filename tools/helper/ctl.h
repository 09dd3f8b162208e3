/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir-helper's control protocol, shared by the helper (control.c) and
 * the device commands of vmirctl (tools/vmirctl_dev.c).
 *
 * The helper listens on the abstract unix socket "\0vmir-helper"
 * (SOCK_SEQPACKET; abstract names are per network namespace, so each
 * namespace has its own helper). One request per connection, one reply,
 * then the helper closes. Fields are separated by a tab; a request is at
 * most HELPER_MSG_MAX bytes:
 *
 *   ATTACH <image> <version, 0 = latest> <mirror dir, "" = default>
 *          [<flags: "" or "no-prefetch">]
 *                                   -> OK <device path>
 *   DETACH <dev id>                 -> OK <mirror dir>
 *   COMMIT <dev id> <to image, "" = same image>
 *                                   -> OK <image>@<version>
 *   STATS <dev id>                  -> OK <peer chunks> <peer bytes>
 *          <chunk server chunks> <chunk server bytes> <peer misses>
 *          (the device's fetches by source, bytes as they travelled)
 *          <served chunks> <served bytes> <refused> (this node, to
 *          peers) <peer address, "-" = not serving>, space-separated
 *   any failure                     -> ERR <errno> <message>
 *
 * Only root (SO_PEERCRED uid 0) may talk to the helper. The reply comes
 * when the operation has ended, which for an attach or a commit may take
 * a network round trip or many: the helper serves everything else
 * meanwhile.
 */
#ifndef VMIR_HELPER_CTL_H
#define VMIR_HELPER_CTL_H

#define HELPER_SOCK_NAME	"vmir-helper"	/* abstract: leading NUL */
#define HELPER_MSG_MAX		8192
#define HELPER_REG_DIR		"/run/vmir/devices"
#define HELPER_MIRROR_ROOT	"/var/lib/vmir/mirrors"
#define HELPER_STATS_FIELDS	9

#endif /* VMIR_HELPER_CTL_H */
