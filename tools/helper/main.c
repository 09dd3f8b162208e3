// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-helper: serves the vmir kernel module of one compute node (one
 * network namespace).
 *
 *   vmir-helper --conf FILE [--mirror-root DIR] [--reg-dir DIR]
 *               [--timeout-ms MS] [--read-ahead-kib N]
 *               [--learn-idle-ms MS] [--no-learn]
 *               [--peer-listen ADDR:PORT] [--peer-advertise IP:PORT]
 *               [--no-peers] [-v]
 *
 * It registers with the module over generic netlink, fetches the chunks
 * the module misses from the cluster (libvmir) into each device's mirror
 * file, publishes commits, and answers vmirctl on the control socket
 * (ctl.h). How the work is split: helper.h.
 *
 * Files of a device (state.h):
 *   MIRROR_DIR/mirror      the mirror (chunk i at offset i * chunk_size)
 *   MIRROR_DIR/state       saved at detach: bitmaps to resume from
 *   MIRROR_DIR/commit.tmp  the captured commit set during a commit
 *   REG_DIR/vmirN          which mirror dir /dev/vmirN uses, so that a
 *                          restarted helper serves existing devices
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"
#include "helper.h"
#include "state.h"
#include "vmir_util.h"

/* control connections polled at once; more wait for the next turn */
#define HELPER_POLL_CONNS	64

static volatile sig_atomic_t helper_stop;

static void helper_on_signal(int sig)
{
	helper_stop = sig;
}

/* a message of the module: an event, or the reply to a PREFETCH */
static void helper_on_msg(void *arg, uint8_t cmd, struct nlattr **tb)
{
	struct helper *h = arg;
	const uint32_t *chunks;
	size_t n;

	if (!tb[VMIR_ATTR_DEV_ID] || vmir_nl_get_chunks(tb, &chunks, &n)) {
		vmir_err("malformed message %u from the module ignored", cmd);
		return;
	}
	switch (cmd) {
	case VMIR_CMD_MISS:
		helper_on_miss(h, nla_get_u32(tb[VMIR_ATTR_DEV_ID]), chunks, n);
		break;
	case VMIR_CMD_CAPTURE_NEEDED:
		helper_on_capture_needed(h, nla_get_u32(tb[VMIR_ATTR_DEV_ID]),
					 chunks, n);
		break;
	case VMIR_CMD_PREFETCH:
		helper_on_prefetched(h, nla_get_u32(tb[VMIR_ATTR_DEV_ID]),
				     chunks, n);
		break;
	default:
		vmir_dbg("message %u from the module ignored", cmd);
		break;
	}
}

/* a message sent without waiting (answers, claims) was refused */
static void helper_on_error(void *arg, uint8_t cmd, struct nlattr **tb,
			    int err, const char *msg)
{
	struct helper *h = arg;

	if (cmd == VMIR_CMD_PREFETCH) {
		/* a stopping device: its read-ahead ends there */
		helper_prefetch_failed(h);
		return;
	}
	vmir_err("the module refused message %u for vmir%u: %s%s%s", cmd,
		 tb[VMIR_ATTR_DEV_ID] ? nla_get_u32(tb[VMIR_ATTR_DEV_ID]) : 0,
		 strerror(-err), msg[0] ? ": " : "", msg);
}

static int helper_register(struct helper *h)
{
	struct nl_msg *msg = vmir_nl_msg(&h->nl, VMIR_CMD_HELPER_REGISTER, 0);
	char emsg[VMIR_NL_MSG_MAX];
	int ret;

	if (!msg)
		return -ENOMEM;
	/* events may arrive before the ack: the handler takes them */
	ret = vmir_nl_call(&h->nl, msg, NULL, NULL, emsg, sizeof(emsg));
	if (ret)
		vmir_err("HELPER_REGISTER failed: %s%s%s%s", strerror(-ret),
			 emsg[0] ? ": " : "", emsg,
			 ret == -EBUSY ? " (another vmir-helper runs in this network namespace)" : "");
	return ret;
}

/*
 * Everything queued on socket nl. On the event socket an overrun loses
 * nothing that matters: the module delivers its events again, and what
 * else comes there (failures of answers sent without waiting) is only
 * reported. The request socket cannot overrun: its replies are bounded
 * by the read-ahead claims in flight (helper.h).
 */
static void helper_drain(struct vmir_nl *nl, const char *what)
{
	int ret = vmir_nl_dispatch(nl);

	if (ret == -ENOBUFS)
		vmir_warn("the %s socket overran; the module sends its events again",
			  what);
	else if (ret)
		vmir_err("receiving from the vmir module (%s socket) failed: %s",
			 what, strerror(-ret));
}

/*
 * The loop. It ends on a signal once no commit is in progress (a commit
 * that ends normally leaves its device consistent; misses are served
 * meanwhile, new control requests are not taken).
 */
static int helper_loop(struct helper *h)
{
	struct pollfd pfd[5 + HELPER_POLL_CONNS];
	bool more = false;
	int ret, timeout, nconn, learn, peer;

	pfd[0].fd = vmir_nl_fd(&h->nl);
	pfd[1].fd = h->ctl_fd;
	pfd[3].fd = vmir_nl_fd(&h->req);
	pfd[4].fd = helper_peer_pollfd(h);
	pfd[0].events = pfd[1].events = pfd[2].events = POLLIN;
	pfd[3].events = pfd[4].events = POLLIN;
	while (!helper_stop || h->commits) {
		if (helper_stop && h->commits)
			vmir_info("waiting for %u commit(s) to end", h->commits);
		/*
		 * first: peers' GETs, and the replies queued last turn go out;
		 * then what they and the timers start, which pollfd submits
		 */
		helper_peer_poll(h);
		learn = helper_learn_step(h);
		peer = helper_peer_step(h);
		if (peer >= 0 && (learn < 0 || learn > peer))
			learn = peer;
		pfd[2].fd = vmir_client_pollfd(h->c, &timeout);
		if (learn >= 0 && (timeout < 0 || timeout > learn))
			timeout = learn;
		nconn = helper_ctl_pollfds(h, pfd + 5, HELPER_POLL_CONNS);
		/* a silent control connection is dropped after a while */
		if (nconn && (timeout < 0 || timeout > 1000))
			timeout = 1000;
		if (more)
			timeout = 0;
		pfd[1].fd = helper_stop ? -1 : h->ctl_fd;
		ret = poll(pfd, 5 + nconn, timeout);
		if (ret < 0 && errno != EINTR) {
			vmir_err("poll failed: %s", strerror(errno));
			return -errno;
		}
		if (ret > 0 && pfd[0].revents)
			helper_drain(&h->nl, "event");
		if (ret > 0 && pfd[3].revents)
			helper_drain(&h->req, "request");
		if (ret > 0 && pfd[1].revents)
			helper_ctl_accept(h);
		helper_ctl_serve(h, pfd + 5, ret > 0 ? nconn : 0);
		if (vmir_client_poll(h->c, 0))
			vmir_err("%s", vmir_client_error(h->c));
		more = helper_commits_step(h);
		helper_flush(h);
	}
	return 0;
}

static void helper_usage(FILE *f)
{
	fprintf(f,
		"usage: vmir-helper --conf FILE [--mirror-root DIR] [--reg-dir DIR]\n"
		"                   [--timeout-ms MS] [--read-ahead-kib N]\n"
		"                   [--learn-idle-ms MS] [--no-learn]\n"
		"                   [--peer-listen ADDR:PORT] [--peer-advertise IP:PORT]\n"
		"                   [--no-peers] [-v]\n"
		"  --conf FILE         cluster configuration (default: $VMIR_CONF)\n"
		"  --mirror-root DIR   default parent of mirror directories (%s)\n"
		"  --reg-dir DIR       device registry (%s)\n"
		"  --timeout-ms MS     parked request timeout of new devices\n"
		"  --read-ahead-kib N  after a miss that follows a chunk already\n"
		"                      fetched, fetch the next N KiB too (default\n"
		"                      %u, 0 = off)\n"
		"  --learn-idle-ms MS  publish a device's access order as its\n"
		"                      version's profile once no new chunk was\n"
		"                      touched this long (default %u; 0: only at\n"
		"                      its first commit or its detach)\n"
		"  --no-learn          publish no access profiles\n"
		"  --peer-listen A:P   serve the chunks of attached versions to\n"
		"                      other nodes there (default 0.0.0.0:%u;\n"
		"                      if that port is taken, serve none)\n"
		"  --peer-advertise IP:PORT\n"
		"                      the address other nodes use (default: this\n"
		"                      node's IP towards the version server and the\n"
		"                      port listened on)\n"
		"  --no-peers          neither serve other nodes nor ask them\n"
		"  -v                  debug messages\n",
		HELPER_MIRROR_ROOT, HELPER_REG_DIR, HELPER_READ_AHEAD_KIB,
		HELPER_LEARN_IDLE_MS, HELPER_PEER_PORT);
}

/* 0: parsed; else the exit status */
static int helper_args(struct helper *h, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			vmir_log_set_verbose(true);
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			helper_usage(stdout);
			return -1;
		}
		if (!strcmp(a, "--no-learn")) {
			h->learn = false;
			continue;
		}
		if (!strcmp(a, "--no-peers")) {
			h->peers = false;
			continue;
		}
		if (!val) {
			vmir_err("unknown option or missing value: '%s'", a);
			helper_usage(stderr);
			return 2;
		}
		if (!strcmp(a, "--conf")) {
			h->conf = val;
		} else if (!strcmp(a, "--mirror-root")) {
			h->mirror_root = val;
		} else if (!strcmp(a, "--reg-dir")) {
			h->reg_dir = val;
		} else if (!strcmp(a, "--read-ahead-kib")) {
			if (helper_parse_u32(val, &h->read_ahead_kib) ||
			    h->read_ahead_kib > (1U << 20)) {
				vmir_err("bad --read-ahead-kib '%s' (0..1048576)",
					 val);
				return 2;
			}
		} else if (!strcmp(a, "--learn-idle-ms")) {
			if (helper_parse_u32(val, &h->learn_idle_ms) ||
			    h->learn_idle_ms > 86400000u) {
				vmir_err("bad --learn-idle-ms '%s' (0..86400000)",
					 val);
				return 2;
			}
		} else if (!strcmp(a, "--peer-listen")) {
			struct vmir_addr pa;

			if (vmir_addr_parse(val, &pa)) {
				vmir_err("bad --peer-listen '%s' (ADDR:PORT)", val);
				return 2;
			}
			h->peer_listen = val;
		} else if (!strcmp(a, "--peer-advertise")) {
			if (vmir_addr_numeric(val)) {
				vmir_err("bad --peer-advertise '%s' (a numeric IP:PORT, port not 0)",
					 val);
				return 2;
			}
			h->peer_advertise = val;
		} else if (!strcmp(a, "--timeout-ms")) {
			if (helper_parse_u32(val, &h->timeout_ms)) {
				vmir_err("bad --timeout-ms '%s'", val);
				return 2;
			}
		} else {
			vmir_err("unknown option '%s'", a);
			helper_usage(stderr);
			return 2;
		}
		i++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct vmir_nl_handler handler = {
		.on_msg = helper_on_msg,
		.on_error = helper_on_error,
	};
	struct helper h;
	struct sigaction sa;
	char err[512];
	int ret, status = 1;

	vmir_log_init("vmir-helper");
	memset(&h, 0, sizeof(h));
	h.ctl_fd = -1;
	h.mirror_root = HELPER_MIRROR_ROOT;
	h.reg_dir = HELPER_REG_DIR;
	h.read_ahead_kib = HELPER_READ_AHEAD_KIB;
	h.learn_idle_ms = HELPER_LEARN_IDLE_MS;
	h.learn = true;
	h.peers = true;
	ret = helper_args(&h, argc, argv);
	if (ret)
		return ret < 0 ? 0 : ret;
	/* every fetch is a malloc()ed chunk buffer */
	vmir_heap_keep_buffers(HELPER_HEAP_FREE_MAX);
	if (sodium_init() < 0) {
		vmir_err("libsodium initialisation failed");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = helper_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = vmir_client_open(h.conf, &h.c);
	if (ret) {
		vmir_err("%s", vmir_client_error(NULL));
		return 1;
	}
	ret = vmir_nl_open(&h.nl, 4 << 20, err, sizeof(err));
	if (!ret)
		ret = vmir_nl_open(&h.req, 0, err, sizeof(err));
	if (ret) {
		vmir_err("%s", err);
		goto out;
	}
	handler.arg = &h;
	vmir_nl_set_handler(&h.nl, &handler);
	vmir_nl_set_handler(&h.req, &handler);
	h.ctl_fd = helper_ctl_listen();
	if (h.ctl_fd < 0) {
		vmir_err("cannot listen on the control socket @%s: %s%s",
			 HELPER_SOCK_NAME, strerror(-h.ctl_fd),
			 h.ctl_fd == -EADDRINUSE ? " (is another vmir-helper running in this network namespace?)" : "");
		goto out;
	}
	ret = helper_peer_start(&h);
	if (ret)
		goto out;
	/* devices known before registering: their misses find them */
	ret = helper_adopt(&h);
	if (ret)
		goto out;
	ret = helper_register(&h);
	if (ret)
		goto out;
	nl_socket_set_nonblocking(h.nl.sk);
	nl_socket_set_nonblocking(h.req.sk);
	vmir_info("registered with the vmir module; control socket @%s",
		  HELPER_SOCK_NAME);
	if (!helper_loop(&h))
		status = 0;
	vmir_info("stopping (signal %d); devices stay attached",
		  (int)helper_stop);
out:
	helper_peer_stop(&h);
	helper_ctl_close_all(&h);
	if (h.ctl_fd >= 0)
		close(h.ctl_fd);
	vmir_nl_close(&h.req);
	vmir_nl_close(&h.nl);
	while (h.devs) {
		struct helper_dev *d = h.devs;

		h.devs = d->next;
		helper_dev_free(d);
	}
	vmir_client_close(h.c);
	return status;
}
