// SPDX-License-Identifier: GPL-2.0
/*
 * vmir_nl: generic netlink client of the vmir module (see vmir_nl.h).
 *
 * Built on libnl-genl-3. The socket does no sequence check of its own:
 * events carry sequence 0 and the replies and errors of messages sent
 * without waiting carry theirs, so every message is sorted here instead.
 * The answer of vmir_nl_call() is the one whose sequence number is the
 * request's; everything else goes to the handler, in arrival order.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "vmir_nl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define VMIR_NL_BUF	(1 << 20)	/* default buffer sizes */

/* What userspace checks of what the module sends; the rest is ignored. */
static struct nla_policy vmir_nl_policy[VMIR_ATTR_MAX + 1] = {
	[VMIR_ATTR_DEV_ID]	= { .type = NLA_U32 },
	[VMIR_ATTR_DISK_NAME]	= { .type = NLA_STRING },
	[VMIR_ATTR_IMAGE]	= { .type = NLA_STRING },
	[VMIR_ATTR_VERSION]	= { .type = NLA_U32 },
	[VMIR_ATTR_SIZE]	= { .type = NLA_U64 },
	[VMIR_ATTR_CHUNK_SIZE]	= { .type = NLA_U32 },
	[VMIR_ATTR_NCHUNKS]	= { .type = NLA_U32 },
	[VMIR_ATTR_TIMEOUT_MS]	= { .type = NLA_U32 },
	[VMIR_ATTR_STATE]	= { .type = NLA_U32 },
	[VMIR_ATTR_DEV_FLAGS]	= { .type = NLA_U64 },
	[VMIR_ATTR_MAP_START]	= { .type = NLA_U32 },
	[VMIR_ATTR_STATUS]	= { .type = NLA_U32 },
	[VMIR_ATTR_NR_PRESENT]	= { .type = NLA_U32 },
	[VMIR_ATTR_NR_DIRTY]	= { .type = NLA_U32 },
	[VMIR_ATTR_NR_FETCHING]	= { .type = NLA_U32 },
	[VMIR_ATTR_NR_PARKED]	= { .type = NLA_U32 },
	[VMIR_ATTR_NR_COMMIT]	= { .type = NLA_U32 },
	[VMIR_ATTR_NR_FROZEN]	= { .type = NLA_U32 },
	[VMIR_ATTR_STATS]	= { .type = NLA_NESTED },
	[VMIR_ATTR_NR_ACCESSED]	= { .type = NLA_U32 },
	[VMIR_ATTR_NR_ACCESS_LOST] = { .type = NLA_U32 },
};

int vmir_nl_open(struct vmir_nl *nl, size_t rcvbuf, char *err, size_t errlen)
{
	int one = 1, ret;

	memset(nl, 0, sizeof(*nl));
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = genl_connect(nl->sk);
	if (ret < 0) {
		snprintf(err, errlen, "cannot open a generic netlink socket: %s",
			 nl_geterror(ret));
		ret = -EIO;
		goto out_free;
	}
	nl_socket_disable_seq_check(nl->sk);
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	/*
	 * libnl's default buffers (32 KiB) are smaller than an ADD_DEVICE or
	 * SET_STATE carrying two full map segments.
	 */
	if (nl_socket_set_buffer_size(nl->sk, rcvbuf ? (int)rcvbuf :
				      VMIR_NL_BUF, VMIR_NL_BUF) < 0) {
		snprintf(err, errlen, "cannot size the netlink socket buffers");
		ret = -EIO;
		goto out_free;
	}
	nl->family = genl_ctrl_resolve(nl->sk, VMIR_GENL_NAME);
	if (nl->family < 0) {
		snprintf(err, errlen,
			 "the generic netlink family '%s' is not registered: is the vmir module loaded? try modprobe vmir",
			 VMIR_GENL_NAME);
		ret = -ENOENT;
		goto out_free;
	}
	return 0;

out_free:
	nl_socket_free(nl->sk);
	nl->sk = NULL;
	return ret;
}

void vmir_nl_close(struct vmir_nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
}

int vmir_nl_fd(const struct vmir_nl *nl)
{
	return nl_socket_get_fd(nl->sk);
}

void vmir_nl_set_handler(struct vmir_nl *nl, const struct vmir_nl_handler *h)
{
	nl->h = *h;
}

struct nl_msg *vmir_nl_msg(const struct vmir_nl *nl, uint8_t cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0, flags,
			 cmd, VMIR_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

struct nl_msg *vmir_nl_dev_msg(const struct vmir_nl *nl, uint8_t cmd,
			       uint32_t dev_id)
{
	struct nl_msg *msg = vmir_nl_msg(nl, cmd, 0);

	if (msg && nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev_id)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

int vmir_nl_parse(struct nl_msg *msg, uint8_t *cmd, struct nlattr **tb)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct genlmsghdr *gh;

	if (!genlmsg_valid_hdr(nlh, 0))
		return -EPROTO;
	gh = nlmsg_data(nlh);
	*cmd = gh->cmd;
	if (genlmsg_parse(nlh, 0, tb, VMIR_ATTR_MAX, vmir_nl_policy) < 0)
		return -EPROTO;
	return 0;
}

/* The extended ack message of an error, if any, into msg. */
static void vmir_nl_extack(struct nlmsgerr *e, char *msg, size_t len)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	size_t off = NLMSG_HDRLEN + sizeof(*e);
	struct nlattr *a;

	if (len)
		msg[0] = '\0';
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	while (off + NLA_HDRLEN <= nlh->nlmsg_len) {
		a = (struct nlattr *)((char *)nlh + off);
		if (a->nla_len < NLA_HDRLEN || off + a->nla_len > nlh->nlmsg_len)
			return;
		if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG)
			snprintf(msg, len, "%.*s", (int)(a->nla_len - NLA_HDRLEN),
				 (char *)a + NLA_HDRLEN);
		else if ((a->nla_type & NLA_TYPE_MASK) ==
			 NLMSGERR_ATTR_MISS_TYPE && len && !msg[0])
			snprintf(msg, len, "missing attribute %u",
				 *(uint32_t *)((char *)a + NLA_HDRLEN));
		off += NLA_ALIGN(a->nla_len);
	}
}

/*
 * The request an error answers, as far as the kernel echoed it: its
 * command and attributes (tb all NULL when it was capped).
 */
static uint8_t vmir_nl_err_req(struct nlmsgerr *e, struct nlattr **tb)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	const struct genlmsghdr *gh = (const void *)(&e->msg + 1);

	memset(tb, 0, (VMIR_ATTR_MAX + 1) * sizeof(*tb));
	if ((nlh->nlmsg_flags & NLM_F_CAPPED) ||
	    e->msg.nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN ||
	    nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*e) - sizeof(e->msg) +
			     e->msg.nlmsg_len)
		return VMIR_CMD_UNSPEC;
	if (genlmsg_parse(&e->msg, 0, tb, VMIR_ATTR_MAX, vmir_nl_policy) < 0)
		memset(tb, 0, (VMIR_ATTR_MAX + 1) * sizeof(*tb));
	return gh->cmd;
}

/* One receive pass: the call in progress (seq != 0) and the handler. */
struct vmir_nl_rx {
	struct vmir_nl *nl;
	uint32_t seq;			/* of the call, 0: none */
	vmir_nl_reply_fn reply;
	void *arg;
	int err;
	bool done;
	char *emsg;
	size_t emsglen;
};

static int vmir_nl_on_valid(struct nl_msg *msg, void *arg)
{
	struct vmir_nl_rx *rx = arg;
	struct nlattr *tb[VMIR_ATTR_MAX + 1];
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	uint8_t cmd;
	int ret;

	if (rx->seq && nlh->nlmsg_seq == rx->seq) {
		if (rx->err)
			return NL_SKIP;
		ret = vmir_nl_parse(msg, &cmd, tb);
		if (!ret && rx->reply)
			ret = rx->reply(rx->arg, cmd, tb);
		if (ret) {
			rx->err = ret;
			if (rx->emsglen && !rx->emsg[0])
				snprintf(rx->emsg, rx->emsglen,
					 "unexpected answer from the vmir module");
		}
		return NL_SKIP;
	}
	if (rx->nl->h.on_msg && !vmir_nl_parse(msg, &cmd, tb))
		rx->nl->h.on_msg(rx->nl->h.arg, cmd, tb);
	return NL_SKIP;
}

static int vmir_nl_on_error(struct sockaddr_nl *nla, struct nlmsgerr *e,
			    void *arg)
{
	struct vmir_nl_rx *rx = arg;
	struct nlattr *tb[VMIR_ATTR_MAX + 1];
	char msg[VMIR_NL_MSG_MAX];
	uint8_t cmd;

	if (rx->seq && e->msg.nlmsg_seq == rx->seq) {
		rx->done = true;
		if (e->error && !rx->err) {
			rx->err = e->error;
			vmir_nl_extack(e, rx->emsg, rx->emsglen);
		}
		return NL_STOP;
	}
	if (e->error && rx->nl->h.on_error) {
		vmir_nl_extack(e, msg, sizeof(msg));
		cmd = vmir_nl_err_req(e, tb);
		rx->nl->h.on_error(rx->nl->h.arg, cmd, tb, e->error, msg);
	}
	return NL_SKIP;
}

/* NLMSG_DONE of a dump, or an ack (an error message with error 0) */
static int vmir_nl_on_done(struct nl_msg *msg, void *arg)
{
	struct vmir_nl_rx *rx = arg;

	if (rx->seq && nlmsg_hdr(msg)->nlmsg_seq == rx->seq) {
		rx->done = true;
		return NL_STOP;
	}
	return NL_SKIP;
}

/* every message is sorted by the callbacks: none is a mismatch */
static int vmir_nl_no_seq_check(struct nl_msg *msg, void *arg)
{
	return NL_OK;
}

/* Receive and sort once; -NLE_AGAIN when nothing is queued. */
static int vmir_nl_rx_once(struct vmir_nl_rx *rx)
{
	struct nl_cb *cb;
	int ret;

	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb)
		return -NLE_NOMEM;
	nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, vmir_nl_no_seq_check,
		  NULL);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, vmir_nl_on_valid, rx);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, vmir_nl_on_done, rx);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, vmir_nl_on_done, rx);
	nl_cb_err(cb, NL_CB_CUSTOM, vmir_nl_on_error, rx);
	ret = nl_recvmsgs(rx->nl->sk, cb);
	nl_cb_put(cb);
	return ret;
}

int vmir_nl_call(struct vmir_nl *nl, struct nl_msg *msg,
		 vmir_nl_reply_fn reply, void *arg, char *emsg,
		 size_t emsglen)
{
	struct vmir_nl_rx rx = {
		.nl = nl, .reply = reply, .arg = arg,
		.emsg = emsg, .emsglen = emsglen,
	};
	struct pollfd pfd = { .fd = vmir_nl_fd(nl), .events = POLLIN };
	int ret;

	if (emsglen)
		emsg[0] = '\0';
	nlmsg_hdr(msg)->nlmsg_flags |= NLM_F_ACK;
	ret = nl_send_auto(nl->sk, msg);
	rx.seq = nlmsg_hdr(msg)->nlmsg_seq;
	nlmsg_free(msg);
	if (ret < 0) {
		snprintf(emsg, emsglen, "netlink send: %s", nl_geterror(ret));
		return -EIO;
	}
	while (!rx.done) {
		ret = vmir_nl_rx_once(&rx);
		if (rx.done)
			break;
		if (ret == -NLE_AGAIN) {
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		/* events lost to a full buffer are sent again by the module */
		if (ret < 0 && ret != -NLE_NOMEM) {
			snprintf(emsg, emsglen, "netlink receive: %s",
				 nl_geterror(ret));
			return -EIO;
		}
	}
	return rx.err;
}

int vmir_nl_send(struct vmir_nl *nl, struct nl_msg *msg)
{
	int ret;

	nlmsg_hdr(msg)->nlmsg_flags &= ~NLM_F_ACK;
	ret = nl_send_auto(nl->sk, msg);
	nlmsg_free(msg);
	return ret < 0 ? -EIO : 0;
}

int vmir_nl_dispatch(struct vmir_nl *nl)
{
	struct vmir_nl_rx rx = { .nl = nl };
	int ret, lost = 0;

	for (;;) {
		ret = vmir_nl_rx_once(&rx);
		if (ret >= 0)
			continue;
		if (ret == -NLE_AGAIN)
			return lost;
		if (ret == -NLE_NOMEM) {	/* ENOBUFS */
			lost = -ENOBUFS;
			continue;
		}
		return -EIO;
	}
}

uint32_t vmir_nl_u32(struct nlattr **tb, int attr)
{
	return tb[attr] ? nla_get_u32(tb[attr]) : 0;
}

uint64_t vmir_nl_u64(struct nlattr **tb, int attr)
{
	return tb[attr] ? nla_get_u64(tb[attr]) : 0;
}

int vmir_nl_put_chunks(struct nl_msg *msg, const uint32_t *chunks, size_t n)
{
	if (!n || n > VMIR_CHUNKS_MAX)
		return -EINVAL;
	if (nla_put(msg, VMIR_ATTR_CHUNKS, (int)(n * sizeof(*chunks)), chunks))
		return -EMSGSIZE;
	return 0;
}

int vmir_nl_get_chunks(struct nlattr **tb, const uint32_t **chunks,
		       size_t *n)
{
	struct nlattr *a = tb[VMIR_ATTR_CHUNKS];

	*chunks = NULL;
	*n = 0;
	if (!a)
		return 0;
	if (nla_len(a) % sizeof(uint32_t))
		return -EPROTO;
	*chunks = nla_data(a);
	*n = (size_t)nla_len(a) / sizeof(uint32_t);
	return 0;
}

int vmir_nl_parse_dev(struct nlattr **tb, struct vmir_nl_dev *d)
{
	struct nlattr *st[VMIR_STAT_MAX + 1];
	int i;

	memset(d, 0, sizeof(*d));
	if (!tb[VMIR_ATTR_DEV_ID])
		return -EPROTO;
	d->id = nla_get_u32(tb[VMIR_ATTR_DEV_ID]);
	if (tb[VMIR_ATTR_DISK_NAME])
		snprintf(d->disk, sizeof(d->disk), "%s",
			 nla_get_string(tb[VMIR_ATTR_DISK_NAME]));
	else
		snprintf(d->disk, sizeof(d->disk), "vmir%u", d->id);
	if (tb[VMIR_ATTR_IMAGE])
		snprintf(d->image, sizeof(d->image), "%s",
			 nla_get_string(tb[VMIR_ATTR_IMAGE]));
	d->version = vmir_nl_u32(tb, VMIR_ATTR_VERSION);
	d->size = vmir_nl_u64(tb, VMIR_ATTR_SIZE);
	d->chunk_size = vmir_nl_u32(tb, VMIR_ATTR_CHUNK_SIZE);
	d->nchunks = vmir_nl_u32(tb, VMIR_ATTR_NCHUNKS);
	d->timeout_ms = vmir_nl_u32(tb, VMIR_ATTR_TIMEOUT_MS);
	d->state = vmir_nl_u32(tb, VMIR_ATTR_STATE);
	d->flags = vmir_nl_u64(tb, VMIR_ATTR_DEV_FLAGS);
	d->nr_present = vmir_nl_u32(tb, VMIR_ATTR_NR_PRESENT);
	d->nr_dirty = vmir_nl_u32(tb, VMIR_ATTR_NR_DIRTY);
	d->nr_fetching = vmir_nl_u32(tb, VMIR_ATTR_NR_FETCHING);
	d->nr_parked = vmir_nl_u32(tb, VMIR_ATTR_NR_PARKED);
	d->nr_commit = vmir_nl_u32(tb, VMIR_ATTR_NR_COMMIT);
	d->nr_frozen = vmir_nl_u32(tb, VMIR_ATTR_NR_FROZEN);
	if (tb[VMIR_ATTR_STATS] &&
	    !nla_parse_nested(st, VMIR_STAT_MAX, tb[VMIR_ATTR_STATS], NULL))
		for (i = 0; i <= VMIR_STAT_MAX; i++)
			if (st[i] && nla_len(st[i]) == 8)
				d->stat[i] = nla_get_u64(st[i]);
	return 0;
}

static int vmir_nl_dev_reply(void *arg, uint8_t cmd, struct nlattr **tb)
{
	return vmir_nl_parse_dev(tb, arg);
}

int vmir_nl_get_status(struct vmir_nl *nl, uint32_t dev_id,
		       struct vmir_nl_dev *d, char *emsg, size_t emsglen)
{
	struct nl_msg *msg = vmir_nl_dev_msg(nl, VMIR_CMD_GET_STATUS, dev_id);

	if (!msg)
		return -ENOMEM;
	return vmir_nl_call(nl, msg, vmir_nl_dev_reply, d, emsg, emsglen);
}

struct vmir_nl_devs {
	struct vmir_nl_dev *d;
	size_t n, cap;
};

static int vmir_nl_list_reply(void *arg, uint8_t cmd, struct nlattr **tb)
{
	struct vmir_nl_devs *l = arg;
	struct vmir_nl_dev *d;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;

		d = realloc(l->d, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		l->d = d;
		l->cap = cap;
	}
	if (vmir_nl_parse_dev(tb, &l->d[l->n]))
		return -EPROTO;
	l->n++;
	return 0;
}

int vmir_nl_list(struct vmir_nl *nl, struct vmir_nl_dev **devs, size_t *n,
		 char *emsg, size_t emsglen)
{
	struct vmir_nl_devs l = { 0 };
	struct nl_msg *msg = vmir_nl_msg(nl, VMIR_CMD_LIST, NLM_F_DUMP);
	int ret;

	if (!msg)
		return -ENOMEM;
	ret = vmir_nl_call(nl, msg, vmir_nl_list_reply, &l, emsg, emsglen);
	if (ret) {
		free(l.d);
		return ret;
	}
	*devs = l.d;
	*n = l.n;
	return 0;
}

int vmir_nl_put_segment(struct nl_msg *msg, const uint8_t *present,
			const uint8_t *dirty, size_t nbytes, size_t off)
{
	size_t len = nbytes - off;

	if (len > VMIR_MAP_SEG_MAX)
		len = VMIR_MAP_SEG_MAX;
	if (nla_put_u32(msg, VMIR_ATTR_MAP_START, (uint32_t)(off * 8)) ||
	    nla_put(msg, VMIR_ATTR_MAP_PRESENT, (int)len, present + off) ||
	    (dirty && nla_put(msg, VMIR_ATTR_MAP_DIRTY, (int)len, dirty + off)))
		return -EMSGSIZE;
	return (int)len;
}

struct vmir_nl_state {
	size_t nbytes;
	uint8_t *present, *dirty, *commit;
	bool has_commit;
};

static void vmir_nl_copy_seg(uint8_t *map, size_t nbytes, uint32_t start,
			     struct nlattr *a)
{
	size_t off = start / 8, len;

	if (!map || !a || off >= nbytes)
		return;
	len = (size_t)nla_len(a);
	if (len > nbytes - off)
		len = nbytes - off;
	memcpy(map + off, nla_data(a), len);
}

static int vmir_nl_state_reply(void *arg, uint8_t cmd, struct nlattr **tb)
{
	struct vmir_nl_state *s = arg;
	uint32_t start;

	if (!tb[VMIR_ATTR_MAP_START] || !tb[VMIR_ATTR_MAP_PRESENT])
		return -EPROTO;
	start = nla_get_u32(tb[VMIR_ATTR_MAP_START]);
	if (start % 8)
		return -EPROTO;
	vmir_nl_copy_seg(s->present, s->nbytes, start,
			 tb[VMIR_ATTR_MAP_PRESENT]);
	vmir_nl_copy_seg(s->dirty, s->nbytes, start, tb[VMIR_ATTR_MAP_DIRTY]);
	vmir_nl_copy_seg(s->commit, s->nbytes, start,
			 tb[VMIR_ATTR_MAP_COMMIT]);
	if (tb[VMIR_ATTR_MAP_COMMIT])
		s->has_commit = true;
	return 0;
}

int vmir_nl_get_state(struct vmir_nl *nl, uint32_t dev_id, uint64_t nchunks,
		      uint8_t *present, uint8_t *dirty, uint8_t *commit,
		      bool *has_commit, char *emsg, size_t emsglen)
{
	struct vmir_nl_state s = {
		.nbytes = (size_t)((nchunks + 7) / 8),
		.present = present, .dirty = dirty, .commit = commit,
	};
	struct nl_msg *msg = vmir_nl_msg(nl, VMIR_CMD_GET_STATE, NLM_F_DUMP);
	int ret;

	if (!msg || nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev_id)) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	ret = vmir_nl_call(nl, msg, vmir_nl_state_reply, &s, emsg, emsglen);
	if (has_commit)
		*has_commit = s.has_commit;
	return ret;
}
