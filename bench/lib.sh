# SPDX-License-Identifier: GPL-2.0
# Sourced by bench/multideploy inside the QEMU guest: the simulated
# datacenter. One bridge (vbr0) in the guest's initial namespace; every
# machine is a network namespace with one veth link to it:
#
#   vb-st        198.18.0.9    repository store: image source of the
#                              broadcast, qemu-nbd server, overlay store
#   vb-vs        198.18.0.10   vmir-versiond
#   vb-cK        198.18.0.2K   vmir-chunkd K (K = 1..M)
#   vb-nI        198.18.1.I    compute node I (I = 1..254); with the
#                              co-located layout also a vmir-chunkd
#
# Every link is shaped in both directions: on the namespace side (what the
# machine sends) and on the bridge side (what it receives), each with tbf
# (rate) and a netem child (one-way delay). Byte counters are the kernel's
# interface counters of the bridge-side ends (/sys/class/net/vh-*/
# statistics): vh-X's tx_bytes is what X received, its rx_bytes what X sent.

BR=vbr0
NET_PREFIX=15

die() { echo "multideploy: error: $*" >&2; exit 1; }
note() { echo "# $*"; }

ns_addr() {
	case $1 in
	vb-st) echo 198.18.0.9 ;;
	vb-vs) echo 198.18.0.10 ;;
	vb-c*) echo "198.18.0.$((20 + ${1#vb-c}))" ;;
	vb-n*) echo "198.18.1.${1#vb-n}" ;;
	*) die "ns_addr: unknown machine $1" ;;
	esac
}

# shape DEV RATE DELAY: tbf at RATE (tc syntax, e.g. 100mbit), netem
# DELAY (e.g. 100us) below it
shape() {
	local dev=$1 rate=$2 delay=$3
	# burst: at least one 64K GSO packet, or 1 ms at the rate
	tc qdisc replace dev "$dev" root handle 1: tbf rate "$rate" \
		burst 128kb latency 50ms ||
		die "tc tbf on $dev failed (rate '$rate': is sch_tbf available?)"
	tc qdisc replace dev "$dev" parent 1:1 handle 10: netem delay "$delay" \
		limit 10000 ||
		die "tc netem on $dev failed (delay '$delay': is sch_netem available?)"
}

net_bridge() {
	ip link show "$BR" >/dev/null 2>&1 && return 0
	ip link add "$BR" type bridge || die "cannot create bridge $BR"
	# a bridge must not delay forwarding
	echo 0 >/sys/class/net/$BR/bridge/forward_delay 2>/dev/null
	ip link set "$BR" up || die "cannot bring $BR up"
}

# machine_add NS RATE DELAY: namespace, veth to the bridge, address, shaping
machine_add() {
	local ns=$1 rate=$2 delay=$3 addr
	addr=$(ns_addr "$ns")
	ip netns add "$ns" || die "cannot create network namespace $ns"
	ip link add "vh-${ns#vb-}" type veth peer name eth0 netns "$ns" ||
		die "cannot create the veth pair of $ns"
	ip link set "vh-${ns#vb-}" master "$BR" up || die "cannot attach vh-${ns#vb-} to $BR"
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$addr/$NET_PREFIX" dev eth0 || die "cannot address $ns"
	ip -n "$ns" link set eth0 up || die "cannot bring eth0 of $ns up"
	shape "vh-${ns#vb-}" "$rate" "$delay"
	ip netns exec "$ns" tc qdisc replace dev eth0 root handle 1: tbf \
		rate "$rate" burst 128kb latency 50ms ||
		die "tc tbf in $ns failed"
	ip netns exec "$ns" tc qdisc replace dev eth0 parent 1:1 handle 10: \
		netem delay "$delay" limit 10000 || die "tc netem in $ns failed"
}

net_teardown() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '/^vb-/ { print $1 }'); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	ip link del "$BR" 2>/dev/null
	return 0
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# counters: "IFACE RX TX" for every link, bridge side
counters() {
	local f n
	for f in /sys/class/net/vh-*; do
		n=${f##*/}
		echo "$n $(cat "$f/statistics/rx_bytes") $(cat "$f/statistics/tx_bytes")"
	done
}

# traffic BEFORE AFTER SECS RATE_BYTES: prints "wire node_rx node_tx
# repo_rx repo_tx max_link_util busiest_link busiest_bytes" where wire is
# every byte received by any machine (each transfer counted once), and the
# busiest link is the busiest direction of any link over SECS (its name
# with "<" for what the machine received, ">" for what it sent)
traffic() {
	awk -v secs="$3" -v rate="$4" '
	FNR == NR { rx[$1] = $2; tx[$1] = $3; next }
	{
		drx = $2 - rx[$1]; dtx = $3 - tx[$1]
		# bridge side: tx = received by the machine, rx = sent by it
		wire += dtx
		if ($1 ~ /^vh-n/) { nrx += dtx; ntx += drx }
		else { rrx += dtx; rtx += drx }
		if (drx > max) { max = drx; name = substr($1, 4) ">" }
		if (dtx > max) { max = dtx; name = substr($1, 4) "<" }
	}
	END {
		u = (secs > 0 && rate > 0) ? max / (secs * rate) : 0
		printf "%.0f %.0f %.0f %.0f %.0f %.3f %s %.0f\n", wire, nrx, ntx,
			rrx, rtx, u, (name == "" ? "-" : name), max
	}' "$1" "$2"
}

# proc_cpu: "COMM TICKS" per command name of every live process, with
# the CPU time of its reaped children (kernel threads by kind: kworker,
# ksoftirqd), except for this shell, whose children are counted by
# child_cpu
proc_cpu() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v self=$$ '
	{
		a = index($0, "("); b = match($0, /\) [A-Za-z] /)
		if (!a || !b) next
		c = substr($0, a + 1, b - a - 1); sub(/\/.*/, "", c); gsub(/ /, "_", c)
		split(substr($0, b + 2), f, " ")
		t[c] += f[12] + f[13] + ($1 == self ? 0 : f[14] + f[15])
	}
	END { for (c in t) print c, t[c] }'
}

# child_cpu FILE: into FILE, the CPU-seconds the ended children of this
# (sub)shell used; times runs in this shell, not in a pipeline's
# subshell, whose own counters start at zero
child_cpu() {
	times >"$1.times"
	tail -n 1 "$1.times" | awk '{ split($1, u, "m"); split($2, k, "m")
		print u[1] * 60 + u[2] + k[1] * 60 + k[2] }' >"$1"
	rm -f "$1.times"
}

# cpu_top BEFORE AFTER NODES_CPU_S SENDER_CPU_S: CPU-seconds by command
# over a phase, biggest first, "comm:secs" separated by ";"; the node
# processes that ran and ended inside the phase (summed by their shells)
# as "nodes", the sender's (TakTuk's root, the chain's source) as "sender"
cpu_top() {
	awk -v hz="$(getconf CLK_TCK)" -v nodes="$3" -v sender="${4:-0}" '
	FNR == NR { b[$1] = $2; next }
	{ d = ($2 - b[$1]) / hz; if (d > 0.05) s[$1] = d }
	END {
		if (nodes > 0.05) s["nodes"] = nodes
		if (sender > 0.05) s["sender"] = sender
		n = 0
		for (c in s) { k[n++] = c }
		for (i = 0; i < n; i++)
			for (j = i + 1; j < n; j++)
				if (s[k[j]] > s[k[i]]) { x = k[i]; k[i] = k[j]; k[j] = x }
		out = ""
		for (i = 0; i < n && i < 5; i++)
			out = out (i ? ";" : "") sprintf("%s:%.1f", k[i], s[k[i]])
		print (out == "" ? "-" : out)
	}' "$1" "$2"
}

# cpustat: guest CPU ticks "busy total"
cpustat() {
	awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8; print b, b + $5 + $6; exit }' /proc/stat
}

# busy BEFORE AFTER: busy share of all guest CPUs between two cpustat
busy() {
	echo "$1 $2" | awk '{ print ($4 > $2) ? sprintf("%.3f", ($3 - $1) / ($4 - $2)) : 0 }'
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# rate_bytes RATE: tc rate (kbit, mbit, gbit) in bytes per second
rate_bytes() {
	local r=$1
	case $r in
	*gbit) echo $(( ${r%gbit} * 1000000000 / 8 )) ;;
	*mbit) echo $(( ${r%mbit} * 1000000 / 8 )) ;;
	*kbit) echo $(( ${r%kbit} * 1000 / 8 )) ;;
	*) die "rate '$r': use a number followed by kbit, mbit or gbit" ;;
	esac
}

# bottleneck UTIL BUSY LINK: which resource limited the phase: the
# busiest link when it ran at >= 80 % of its rate, else the guest CPU
# when >= 90 % busy, else latency (neither was saturated)
bottleneck() {
	awk -v u="$1" -v b="$2" -v l="$3" 'BEGIN {
		if (u >= 0.8) print "link " l
		else if (b >= 0.9) print "cpu"
		else print "latency"
	}'
}

# allocated bytes of files or directories
stored() { du -s -B1 "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

# sectors read by block device DEV (/dev/X) since it appeared, in bytes
dev_read_bytes() {
	awk '{ print $3 * 512 }' "/sys/block/${1#/dev/}/stat"
}
