/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir-helper: shared by the helper daemon (tools/helper*.c) and the device
 * commands of vmirctl (tools/vmirctl_dev.c).
 *
 * Control protocol. The helper listens on the abstract unix socket
 * "\0vmir-helper" (SOCK_SEQPACKET; abstract names are per network
 * namespace, so each namespace has its own helper). One request per
 * connection, one reply, then the helper closes. Fields are separated by
 * a tab; a request is at most HELPER_MSG_MAX bytes:
 *
 *   ATTACH <image> <version, 0 = latest> <mirror dir, "" = default>
 *                                   -> OK <device path>
 *   DETACH <dev id>                 -> OK <mirror dir>
 *   COMMIT <dev id> <to image, "" = same image>
 *                                   -> OK <image>@<version>
 *   any failure                     -> ERR <errno> <message>
 *
 * Only root (SO_PEERCRED uid 0) may talk to the helper.
 *
 * The generic netlink request helpers below are static inline so that both
 * programs use the same code without a shared object file.
 */
#ifndef VMIR_HELPER_H
#define VMIR_HELPER_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include <netlink/netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include "uapi/linux/vmir.h"

#define HELPER_SOCK_NAME	"vmir-helper"	/* abstract: leading NUL */
#define HELPER_MSG_MAX		8192
#define HELPER_REG_DIR		"/run/vmir/devices"
#define HELPER_MIRROR_ROOT	"/var/lib/vmir/mirrors"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* One synchronous request on a netlink socket: the outcome of its ack. */
struct helper_nl_req {
	int (*parse)(struct nl_msg *msg, void *arg);	/* each reply */
	void *arg;
	int err;		/* 0 or -errno from the ack */
	bool done;
	char msg[256];		/* extended ack message, "" when none */
};

static inline int helper_nl_valid(struct nl_msg *msg, void *arg)
{
	struct helper_nl_req *r = arg;

	if (r->parse && !r->err) {
		int ret = r->parse(msg, r->arg);

		if (ret)
			r->err = ret;
	}
	return NL_OK;
}

static inline int helper_nl_finish(struct nl_msg *msg, void *arg)
{
	struct helper_nl_req *r = arg;

	r->done = true;
	return NL_STOP;
}

static inline int helper_nl_error(struct sockaddr_nl *nla,
				  struct nlmsgerr *e, void *arg)
{
	struct helper_nl_req *r = arg;
	struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	size_t off = NLMSG_HDRLEN + sizeof(*e);

	r->done = true;
	if (e->error)
		r->err = e->error;
	/* extended ack: attributes after the (possibly capped) request */
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NL_STOP;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	while (off + NLA_HDRLEN <= nlh->nlmsg_len) {
		struct nlattr *a = (struct nlattr *)((char *)nlh + off);

		if (a->nla_len < NLA_HDRLEN ||
		    off + a->nla_len > nlh->nlmsg_len)
			break;
		if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG)
			snprintf(r->msg, sizeof(r->msg), "%.*s",
				 (int)(a->nla_len - NLA_HDRLEN),
				 (char *)a + NLA_HDRLEN);
		off += NLA_ALIGN(a->nla_len);
	}
	return NL_STOP;
}

/*
 * Send msg (consumed) on s and wait for its ack; parse runs for each reply
 * message (each message of a dump). Returns 0 or -errno; r->msg holds the
 * kernel's extended ack message if there was one.
 */
static inline int helper_nl_call(struct nl_sock *s, struct nl_msg *msg,
				 struct helper_nl_req *r)
{
	struct nl_cb *cb;
	int ret;

	r->err = 0;
	r->done = false;
	r->msg[0] = '\0';
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, helper_nl_valid, r);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, helper_nl_finish, r);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, helper_nl_finish, r);
	nl_cb_err(cb, NL_CB_CUSTOM, helper_nl_error, r);
	ret = nl_send_auto(s, msg);
	nlmsg_free(msg);
	if (ret < 0) {
		ret = -EIO;
		snprintf(r->msg, sizeof(r->msg), "netlink send: %s",
			 nl_geterror(ret));
		goto out;
	}
	ret = 0;
	while (!r->done) {
		ret = nl_recvmsgs(s, cb);
		if (ret < 0 && !r->done) {
			snprintf(r->msg, sizeof(r->msg), "netlink receive: %s",
				 nl_geterror(ret));
			ret = -EIO;
			goto out;
		}
	}
	ret = r->err;
out:
	nl_cb_put(cb);
	return ret;
}

/* a new request message for command cmd (dump: NLM_F_DUMP) */
static inline struct nl_msg *helper_nl_msg(int family, int cmd, bool dump)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0,
			 dump ? NLM_F_DUMP : 0, cmd, VMIR_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

/*
 * Connect a generic netlink socket and resolve the vmir family. Returns 0
 * or -errno with a message for the user in err.
 */
static inline int helper_nl_open(struct nl_sock **sp, int *family, char *err,
				 size_t errlen)
{
	struct nl_sock *s;
	int one = 1, ret;

	s = nl_socket_alloc();
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = genl_connect(s);
	if (ret < 0) {
		snprintf(err, errlen, "cannot open a generic netlink socket: %s",
			 nl_geterror(ret));
		nl_socket_free(s);
		return -EIO;
	}
	setsockopt(nl_socket_get_fd(s), SOL_NETLINK, NETLINK_EXT_ACK, &one,
		   sizeof(one));
	ret = genl_ctrl_resolve(s, VMIR_GENL_NAME);
	if (ret < 0) {
		snprintf(err, errlen,
			 "the generic netlink family '%s' is not registered: is the vmir module loaded? try modprobe vmir",
			 VMIR_GENL_NAME);
		nl_socket_free(s);
		return -ENOENT;
	}
	*family = ret;
	*sp = s;
	return 0;
}

#endif /* VMIR_HELPER_H */
