# SPDX-License-Identifier: GPL-2.0
# Sourced by bench/multideploy inside the QEMU guest: the simulated
# cluster, the recorded boot, its calibration, the five strategies and the
# rows of results.csv. Options and helpers come from multideploy and lib.sh.

[ -n "$image" ] && [ -r "$image" ] || die "--image FILE missing or unreadable in the guest ($image)"
[ -n "${VMIR_VM_OUT:-}" ] || die "VMIR_VM_OUT is not set (run through tests/kernel/vm-run)"
BIN=$top/build/bin
RELAY=$top/build/bench-deploy/relay
REPLAY=$top/build/bench-deploy/replay
BOOT=$top/bench/boot-workload
export PATH=$BIN:$PATH
for b in vmirctl vmir-helper vmir-chunkd vmir-versiond; do
	[ -x "$BIN/$b" ] || die "$BIN/$b missing: run make first"
done
for b in "$RELAY" "$REPLAY"; do
	[ -x "$b" ] || die "$b missing (the host side builds it)"
done
for t in qemu-nbd qemu-img losetup tc ip mkfs.ext4 python3 taktuk blktrace blkparse; do
	command -v $t >/dev/null || die "$t is not installed on the host"
done

res=$VMIR_VM_OUT/results
mkdir -p "$res"
csv=$res/results.csv
ncsv=$res/nodes.csv
echo "phase,strategy,layout,boot,nodes,time_s,mean_ready_s,mean_boot_s,wire_bytes,node_rx_bytes,node_tx_bytes,repo_rx_bytes,repo_tx_bytes,stored_repo_bytes,stored_node_bytes,read_bytes,fetched_bytes,misses,fetch_lat_us,io_wait_s,dirty_bytes,added_bytes,cpu_busy,helper_cpu_s,max_link_util,busiest_link,busiest_link_bytes,link_Bps,bottleneck,top_cpu,check" >"$csv"
echo "strategy,layout,boot,nodes,node,ready_s,boot_s,read_bytes,fetched_bytes,misses,fetch_lat_us,io_wait_s,check" >"$ncsv"
echo "strategy,layout,boot,nodes,node,step,seconds,output_digest" >"$res/steps.csv"
rb=$(rate_bytes "$rate")

# Every node's local disk is a directory on the scratch disk (ext4 on
# virtio): vmir's mirrors and co-located chunk servers, the copies and
# the qcow2 overlays all live there, so each strategy writes its node-local
# data to the same kind of storage. The repository (chunk servers, the
# base image served over NBD, the copied overlays) is on the scratch disk
# too. Logs, mount points and control files are on the guest's tmpfs.
W=/tmp/vb			# tmpfs: logs, mount points, control files
SCR=$W/scratch			# ext4 on the virtio scratch disk
helper_pids=
cleanup() {
	local p d
	set +e
	for p in $helper_pids; do kill "$p" 2>/dev/null; done
	for p in $(jobs -p); do kill "$p" 2>/dev/null; done
	for d in /dev/vmir[0-9]*; do [ -b "$d" ] && umount "$d" 2>/dev/null; done
	for d in /dev/nbd*; do qemu-nbd -d "$d" >/dev/null 2>&1; done
	losetup -D 2>/dev/null
	net_teardown
	umount "$SCR" 2>/dev/null
}
trap cleanup EXIT

for m in virtio_blk ext4 loop veth bridge sch_tbf sch_netem; do
	modprobe "$m" 2>/dev/null || die "modprobe $m failed"
done
modprobe nbd nbds_max=$((maxn > 16 ? maxn : 16)) || die "modprobe nbd failed"
ip link set lo up
mkdir -p /run/lock		# qemu-nbd -c locks there; /run is a fresh tmpfs
# a node's helper, chunk server and relay each hold a few hundred files
ulimit -n 65536

disk=
for s in /sys/block/vd*/serial; do
	[ -r "$s" ] && [ "$(cat "$s")" = vmir-scratch ] && disk=/dev/$(basename "$(dirname "$s")")
done
[ -n "$disk" ] || die "no scratch disk (vm-run --scratch-disk) in the guest"
mkdir -p "$W" "$SCR"
mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$disk" || die "mkfs.ext4 $disk failed"
mount -o noatime "$disk" "$SCR" || die "mount $disk failed"
mkdir -p "$SCR/repo"

t=$(now)
cp --sparse=always "$image" "$SCR/repo/base.img" || die "cannot copy $image into the guest"
ib=$(stat -c %s "$SCR/repo/base.img")
note "image $image: $((ib >> 20)) MiB, $(( $(stored "$SCR/repo/base.img") >> 20 )) MiB allocated; copied in $(elapsed "$t" "$(now)") s"

# the machines: the chunk servers of the tier layout only when vmir runs
# with it
tiered=
in_list vmir "$strategies" && in_list tier "$layouts" && tiered=1
net_bridge
machines="vb-st vb-vs"
[ -n "$tiered" ] && for k in $(seq "$chunkds"); do machines="$machines vb-c$k"; done
for i in $(seq "$maxn"); do machines="$machines vb-n$i"; done
for m in $machines; do machine_add "$m" "$rate" "$delay"; done
note "network: $(echo $machines | wc -w) namespaces on bridge $BR, every link $rate and $delay each way at each end"

{
	echo "Parameters: image $((ib >> 20)) MiB raw ext4 (Debian bookworm minbase, $(( $(stored "$SCR/repo/base.img") >> 20 )) MiB allocated)," \
	     "links $rate with $delay one-way delay at each end (tbf + netem), vmir chunk servers: tier = $chunkds machines of their own, coloc = one in every node (R=$replicas, chunk $chunk)," \
	     "snapshot data $snapmib MiB per node, guest $(nproc) vCPUs (TCG) and $(( $(awk '/MemTotal/ { print $2 }' /proc/meminfo) >> 10 )) MiB," \
	     "node counts $nodes, strategies $strategies, layouts $layouts, boot $boot (replay dependencies: $deps)${realn:+ (real boot too at N in $realn)}${rak:+, vmir-helper --read-ahead-kib $rak}."
} >"$res/params.md"

# calibration: one transfer over one shaped link, and the CPU meanwhile
head -c $((48 << 20)) /dev/urandom >"$SCR/repo/calib" || die "cannot write $SCR/repo/calib"
in_ns vb-n1 "$RELAY" recv "$(ns_addr vb-n1)":7499 >/dev/null &
c0=$(cpustat)
t=$(in_ns vb-st "$RELAY" send "$(ns_addr vb-n1)":7499 "$SCR/repo/calib") ||
	die "calibration transfer failed"
wait
c1=$(cpustat)
link_Bps=$(echo "$t" | awk '{ printf "%.0f", $1 / $2 }')
note "calibration: one link moves $((link_Bps / 1000)) kB/s (rate $rate = $((rb / 1000)) kB/s), guest CPU busy $(busy "$c0" "$c1")"
echo "Link calibration: one shaped link carried $(awk -v b="$link_Bps" 'BEGIN { printf "%.2f", b / 1e6 }') MB/s of TCP payload for a $rate rate; guest CPU busy $(busy "$c0" "$c1") meanwhile. \"Network allows\" below is the busiest link's bytes at this rate." >>"$res/params.md"
rm -f "$SCR/repo/calib"

# --- the recorded boot ---------------------------------------------------------

# local_copy DIR: a fresh sparse copy of the image in DIR on a loop
# device; prints the device
local_copy() {
	mkdir -p "$1"
	cp --sparse=always "$SCR/repo/base.img" "$1/image.raw" || return 1
	losetup -f --show "$1/image.raw"
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# record_once D: the real boot alone on one node from a local copy, every
# request's issue (D) and completion (C) recorded by blktrace, converted
# into D/trace (bench/README.md); sets rec_wall (the boot's seconds)
record_once() {
	local d=$1 dev bt t0 t1
	rm -rf "$d" "$SCR/rec"
	mkdir -p "$d/mnt"
	dev=$(local_copy "$SCR/rec") || die "cannot make the local copy to record on"
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug ||
		die "cannot mount debugfs (blktrace needs it)"
	drop_caches
	(cd "$d" && exec blktrace -d "$dev" -a issue -a complete -o rec) >"$d/blktrace.log" 2>&1 &
	bt=$!
	for _ in $(seq 250); do ls "$d"/rec.blktrace.* >/dev/null 2>&1 && break; sleep 0.04; done
	ls "$d"/rec.blktrace.* >/dev/null 2>&1 || { cat "$d/blktrace.log"; die "blktrace did not start"; }
	sleep 0.5
	t0=$(now)
	in_ns vb-n1 "$BOOT" "$dev" "$d/mnt" "$d/boot.log" || die "the boot to record failed"
	t1=$(now)
	sleep 0.5
	kill -INT "$bt"
	wait "$bt" || { cat "$d/blktrace.log"; die "blktrace failed"; }
	blkparse -q -i rec -D "$d" -f '%a %d %T.%9t %S %n\n' -o "$d/parsed" >/dev/null 2>"$d/blkparse.log" ||
		{ cat "$d/blkparse.log"; die "blkparse failed"; }
	"$REPLAY" convert --wall-us "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1e6 }')" \
		<"$d/parsed" >"$d/trace" 2>"$d/convert.log" ||
		{ cat "$d/convert.log"; die "converting the recorded boot failed"; }
	losetup -d "$dev"
	rm -rf "$SCR/rec"
	rec_wall=$(elapsed "$t0" "$t1")
}

# record_boot: the boot recorded REC_TRIES times, the fastest recording
# kept. The tracer only ever adds time to the boot it records (under TCG
# its readers share the two emulated CPUs: one recording took 24.0 s of a
# boot that took 17.4-19.5 s untraced minutes later), so the fastest of a
# few is the least perturbed one.
rec_tries=3
record_boot() {
	local k best= walls=
	for k in $(seq $rec_tries); do
		record_once "$W/rec.$k"
		walls="$walls $rec_wall"
		note "recorded the boot ($k of $rec_tries): $rec_wall s with blktrace; $(cat "$W/rec.$k/convert.log")"
		if [ -z "$best" ] || awk -v a="$rec_wall" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then
			best=$k best_wall=$rec_wall
		fi
	done
	rm -rf "$W/rec"
	mv "$W/rec.$best" "$W/rec"
	gzip -9c "$W/rec/parsed" >"$res/recorded-boot.blkparse.gz"
	trace=$W/rec/trace recorded=1
	echo "Recorded boot: made in this run (blktrace, D and C events, on a loop device over a local copy), $rec_tries recordings (boot while recorded:$walls s), the fastest kept: boot $best_wall s while recorded; $(sed 's/^replay: convert: //' "$W/rec/convert.log")." >>"$res/params.md"
}

recorded=
if [ -z "$trace" ]; then
	record_boot
else
	cp "$trace" "$W/trace" || die "cannot read the trace $trace"
	trace=$W/trace
	echo "Recorded boot: $(basename "$image" .img) trace cached beside the image (keyed by its digest)." >>"$res/params.md"
fi
"$REPLAY" info "$trace" >"$res/trace-info.txt" || die "the trace is unusable"
note "trace: $(cat "$res/trace-info.txt")"

# median V...: the median of the numbers given
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# calibrate_boot: the real boot and the replay, each alone on one node
# from a fresh local copy, on the idle guest, $cal_rounds times each in
# turn (a real boot under TCG varies by +-20 % from one run to the next):
# their medians are compared
cal_rounds=3
calibrate_boot() {
	local mode dev t0 t1 c0 c1 real rep ratio round
	local real_s= rep_s= real_c= rep_c=
	for round in $(seq $cal_rounds); do
		for mode in real replay; do
			rm -rf "$W/cal" "$SCR/cal"
			mkdir -p "$W/cal/mnt"
			dev=$(local_copy "$SCR/cal") || die "cannot make the calibration copy"
			drop_caches
			c0=$(cpustat); t0=$(now)
			if [ $mode = real ]; then
				in_ns vb-n1 "$BOOT" "$dev" "$W/cal/mnt" "$W/cal/boot.log" ||
					die "the calibration boot failed"
			else
				in_ns vb-n1 "$REPLAY" "$dev" "$trace" --seed 1 --deps "$deps" >"$W/cal/replay.out" ||
					die "the calibration replay failed"
			fi
			t1=$(now); c1=$(cpustat)
			if [ $mode = real ]; then
				real_s="$real_s $(elapsed "$t0" "$t1")" real_c="$real_c $(busy "$c0" "$c1")"
			else
				rep_s="$rep_s $(elapsed "$t0" "$t1")" rep_c="$rep_c $(busy "$c0" "$c1")"
			fi
			losetup -d "$dev"
		done
	done
	rm -rf "$SCR/cal"
	# shellcheck disable=SC2086
	real=$(median $real_s) rep=$(median $rep_s)
	ratio=$(ratio "$rep" "$real")
	{
		# shellcheck disable=SC2086
		printf 'Boot calibration (N=1, idle guest, fresh local copy on loop, caches dropped; median of %s runs each, in turn): real boot %s s (runs:%s; guest CPU busy %s), replay %s s (runs:%s; busy %s): replay/real %s, ' \
			"$cal_rounds" "$real" "$real_s" "$(median $real_c)" "$rep" "$rep_s" "$(median $rep_c)" "$ratio"
		awk -v r="$ratio" 'BEGIN { if (r >= 0.85 && r <= 1.15) print "within 15 %."; else print "**not within 15 %**." }'
		printf 'Replay at calibration: %s. ' "$(cat "$W/cal/replay.out")"
		awk -v th="$(sed 's/.*think_s=\([0-9.]*\).*/\1/' "$res/trace-info.txt")" -v w="$real" -v nat="$native" 'BEGIN {
			printf "Of the recorded boot, %.1f s are think time (the CPU work of the booting node between its requests)", th
			if (nat != "") printf "; the same boot on the host'"'"'s own CPU takes %.2f s in all, so the emulated CPU (TCG) inflates the think time about %.0fx (a real node boots in about a tenth of the time: every time in this report is TCG time).\n", nat, th / nat
			else printf ". (The host has no loop devices: native boot time not measured.)\n"
		}'
	} >>"$res/params.md"
	note "$(tail -n 2 "$res/params.md" | head -n 1)"
	awk -v r="$ratio" 'BEGIN { exit !(r >= 0.85 && r <= 1.15) }'
}

# A trace recorded under another load than this run's replays a boot of
# another length: a cached trace that misses the 15 % is recorded again in
# this run (the host keeps the new one); a trace recorded in this run that
# still misses means the host's load changed within minutes, and no row of
# this run would mean what it says.
if ! calibrate_boot; then
	[ -n "$recorded" ] &&
		die "the replay of the boot recorded in this run is not within 15 % of the real boot (see $res/params.md): the host's load is changing; rerun on a quieter host"
	note "the cached trace is not within 15 % of this guest's real boot: recording the boot again"
	echo "The cached trace missed the 15 %: the boot was recorded again in this run, and calibrated again." >>"$res/params.md"
	record_boot
	"$REPLAY" info "$trace" >"$res/trace-info.txt" || die "the new trace is unusable"
	calibrate_boot ||
		die "the replay of the boot recorded in this run is not within 15 % of the real boot (see $res/params.md): the host's load is changing; rerun on a quieter host"
fi
# only a recording that calibrated replaces the host's cached trace: one
# made while the host's load changed would make the next run record again
if [ -n "$recorded" ]; then
	cp "$trace" "$VMIR_VM_OUT/trace.new.tmp" &&
		mv "$VMIR_VM_OUT/trace.new.tmp" "$VMIR_VM_OUT/trace.new" ||
		die "cannot hand the trace to the host"
fi

# --- vmir repository --------------------------------------------------------------

conf=$W/vmir/vmir.conf
mkdir -p "$W/vmir" "$SCR/vmir"
vmirctl keygen "$W/vmir/cluster.key" >/dev/null || die "vmirctl keygen failed"

# start_chunkd NS DIR READY: one chunk server in NS; prints its address
start_chunkd() {
	mkdir -p "$2"
	# not through in_ns: $! must be the server, to stop it by its pid
	ip netns exec "$1" vmir-chunkd --listen "$(ns_addr "$1"):7401" \
		--dir "$2" --key "$W/vmir/cluster.key" --ready-file "$3" \
		</dev/null >"$3.log" 2>&1 &
	echo $! >"$3.pid"
}

# wait_ready FILE...: servers' ready files
wait_ready() {
	local f
	for f in "$@"; do
		for _ in $(seq 500); do [ -s "$f" ] && break; sleep 0.05; done
		[ -s "$f" ] || { tail -n 5 "$f.log"; die "the server of $f did not start"; }
	done
}

# write_conf FILE SERVERS: client configuration for these chunk servers
# (one per line: a line holds at most 198 characters, 16 servers do not fit)
write_conf() {
	cat >"$1" <<EOC
[cluster]
key = $W/vmir/cluster.key
replicas = $replicas
chunk_size = $chunk
timeout_ms = 30000
[versiond]
addr = $(ns_addr vb-vs):7400
[chunkd]
servers = $(echo "$2" | sed 's/, */,\n\t/g')
EOC
}

start_versiond() {
	mkdir -p "$SCR/vmir/versiond"
	in_ns vb-vs setsid vmir-versiond --listen "$(ns_addr vb-vs):7400" \
		--dir "$SCR/vmir/versiond" --key "$W/vmir/cluster.key" \
		--ready-file "$W/vmir/versiond.ready" \
		</dev/null >"$W/vmir/versiond.ready.log" 2>&1 &
	helper_pids="$helper_pids $!"
	wait_ready "$W/vmir/versiond.ready"
}

repo_bytes() {
	VMIR_CONF=$1 in_ns vb-st vmirctl --json servers | python3 -c '
import json, sys
print(sum(s["bytes"] or 0 for s in json.load(sys.stdin)))'
}

# import_image CONF NAME WHAT: import the image from the store, measured
# (not part of any deployment)
import_image() {
	local t0 t1 c0
	counters >"$W/ic0"; t0=$(now)
	VMIR_CONF=$1 in_ns vb-st vmirctl import "$2" "$SCR/repo/base.img" >"$W/import.log" 2>&1 ||
		{ cat "$W/import.log"; die "vmirctl import $2 failed"; }
	t1=$(now); counters >"$W/ic1"
	echo "vmir import ($3, once, not part of any deployment): $(elapsed "$t0" "$t1") s, $(( $(traffic "$W/ic0" "$W/ic1" 1 1 | cut -d' ' -f1) >> 20 )) MiB on the wire, $(( $(repo_bytes "$1") >> 20 )) MiB stored." >>"$res/params.md"
	note "$(tail -n 1 "$res/params.md")"
}

if in_list vmir "$strategies"; then
	start_versiond
	if [ -n "$tiered" ]; then
		list=
		for k in $(seq "$chunkds"); do
			start_chunkd vb-c$k "$SCR/vmir/chunkd.$k" "$W/vmir/chunkd.$k.ready"
			helper_pids="$helper_pids $(cat "$W/vmir/chunkd.$k.ready.pid")"
			list="$list${list:+, }$(ns_addr vb-c$k):7401"
		done
		wait_ready $(seq -f "$W/vmir/chunkd.%g.ready" "$chunkds")
		write_conf "$conf" "$list"
		import_image "$conf" base "tier layout, $chunkds chunk servers"
	fi
fi

# jstatus NS DEV KEY...: fields of vmirctl status --json, space separated
jstatus() {
	local ns=$1 dev=$2
	shift 2
	in_ns "$ns" vmirctl --json status "$dev" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(str(d[k]) for k in sys.argv[1:]))' "$@"
}

# --- one deployment: nodes, clock, rows -------------------------------------------

# prof_start N / prof_stop NAME N: with --profile N, a system-wide
# cpu-clock profile of the guest around one deployment, reported by
# process, by process and object, and by symbol
prof_pid=
# the processes that move a strategy's data
declare -A prof_comms=([vmir]="vmir-helper vmir-chunkd" [learned]="vmir-helper vmir-chunkd" [chain]=relay
	[taktuk]="relay taktuk" [qcow2]=qemu-nbd [floor]=loop0)
prof_start() {
	[ "$1" = "${profile:-}" ] || return 0
	echo 0 >/proc/sys/kernel/kptr_restrict
	rm -f "$W/perf.data"
	perf record -a -g -F 199 -e cpu-clock -o "$W/perf.data" >"$W/perf.log" 2>&1 &
	prof_pid=$!
	for _ in $(seq 250); do [ -s "$W/perf.data" ] && break; sleep 0.04; done
	[ -s "$W/perf.data" ] || { cat "$W/perf.log"; die "perf record did not start"; }
}
prof_stop() {
	local f=$res/profile-$1-$2.txt c
	[ -n "$prof_pid" ] || return 0
	kill -INT "$prof_pid"
	# perf 6.1 may exit non-zero over processes in other namespaces
	# after writing its data; the report below tells
	wait "$prof_pid" || true
	prof_pid=
	{
		echo "# $1, N=$2: perf record -a -g -F 199 -e cpu-clock over the deployment (guest, $(nproc) vCPUs)"
		echo "## by process"
		perf report -i "$W/perf.data" --stdio --no-children -g none --sort comm --percent-limit 0.5
		echo "## by process and object"
		perf report -i "$W/perf.data" --stdio --no-children -g none --sort comm,dso --percent-limit 0.5
		echo "## by process and symbol"
		perf report -i "$W/perf.data" --stdio --no-children -g none --sort comm,sym --percent-limit 0.3
		echo "## by symbol, with callers"
		perf report -i "$W/perf.data" --stdio --no-children -G --sort sym --percent-limit 2
		for c in ${prof_comms[${1%%-*}]} ksoftirqd/0; do
			echo "## $c: inclusive time by function, share of $c's samples"
			perf report -i "$W/perf.data" --stdio --children -g none --comms "$c" \
				--percentage relative --sort sym --percent-limit 2
		done
	} 2>"$W/perf-report.log" | grep -v '^$' >"$f"
	grep -q '%' "$f" || { cat "$W/perf.log" "$W/perf-report.log"; die "perf recorded nothing usable"; }
	note "profile: $f"
}

# measure begin [N] / measure end [NAME N]: interface counters, CPU ticks,
# CPU by process and time of a phase into c0 p0 t0 / t1 p1 c1 (and, for
# a deployment, the profile around it)
measure() {
	if [ "$1" = begin ]; then
		[ -n "${2:-}" ] && prof_start "$2"
		proc_cpu >"$W/p0"; counters >"$W/c0"; c0=$(cpustat); t0=$(now)
	else
		t1=$(now); c1=$(cpustat); counters >"$W/c1"; proc_cpu >"$W/p1"
		[ -n "${2:-}" ] && prof_stop "$2" "$3"
	fi
	return 0
}

prep_nodes() {
	local i
	for i in $(seq "$1"); do
		rm -rf "$W/n$i" "$SCR/n$i"
		mkdir -p "$W/n$i/mnt" "$SCR/n$i"
	done
	drop_caches
}

# node_go I DISK-COMMAND...: node I in the background: DISK-COMMAND (the
# strategy's step that makes the node's disk ready and prints it), then
# the boot on it; times in W/nI, the CPU its processes used in W/nI/cpu
node_go() {
	local i=$1
	shift
	(
		set -e
		dev=$("$@")
		[ -b "$dev" ]
		echo "$dev" >"$W/n$i/dev"
		now >"$W/n$i/ready"
		dev_read_bytes "$dev" >"$W/n$i/read0"
		if [ "$cur_boot" = real ]; then
			in_ns vb-n$i "$BOOT" "$dev" "$W/n$i/mnt" "$W/n$i/boot.log"
		else
			in_ns vb-n$i "$REPLAY" "$dev" "$trace" --seed "$i" --deps "$deps" >"$W/n$i/replay.out"
		fi
		now >"$W/n$i/end"
		child_cpu "$W/n$i/cpu"
	) >"$W/n$i/out" 2>&1 &
	node_pids="$node_pids $!"
}

# nodes_wait WHAT: every node of node_go
nodes_wait() {
	local p
	for p in $node_pids; do
		wait "$p" || { tail -n 5 "$W"/n*/out; die "a node failed ($1)"; }
	done
	node_pids=
}

# node_check I DEV: the boot's result on the node's disk: the digest of
# the real boot's outputs, or the replay's written data verified
node_check() {
	if [ "$cur_boot" = real ]; then
		awk '$1 != "total" && $1 != "logs" { print $1, $3 }' "$W/n$1/boot.log" | sha256sum | cut -c1-16
	elif "$REPLAY" verify "$2" "$trace" --seed "$1" >"$W/n$1/verify" 2>&1; then
		echo verified
	else
		echo "BAD"
	fi
}

# node_rows S N [VMIR-NS-PREFIX]: nodes.csv and steps.csv rows of a
# deployment; vmir nodes add their fetch counters
node_rows() {
	local s=$1 n=$2 i dev st io ck r
	for i in $(seq "$n"); do
		dev=$(cat "$W/n$i/dev")
		st="0 0 0"
		case $s in vmir|learned) st=$(jstatus vb-n$i "$dev" fetched_bytes misses mean_fetch_latency_us) ;; esac
		io=0
		[ -f "$W/n$i/replay.out" ] && io=$(sed 's/.*io_wait_s=\([0-9.]*\).*/\1/' "$W/n$i/replay.out")
		# before the check, whose verify reads the written data back
		r=$(( $(dev_read_bytes "$dev") - $(cat "$W/n$i/read0") ))
		ck=$(node_check "$i" "$dev")
		[ "$cur_boot" = real ] &&
			awk -v p="$s,$cur_layout,$cur_boot,$n,$i" '{ print p "," $1 "," $2 "," $3 }' \
				"$W/n$i/boot.log" >>"$res/steps.csv"
		echo "$s,$cur_layout,$cur_boot,$n,$i,$(elapsed "$t0" "$(cat "$W/n$i/ready")"),$(elapsed "$(cat "$W/n$i/ready")" "$(cat "$W/n$i/end")"),$r,$(echo "$st" | tr ' ' ,),$io,$ck" >>"$ncsv"
	done
}

# node_means S N: "mean_ready mean_boot mean_read sum_fetched mean_misses
# mean_lat_us mean_io_wait check" of a deployment's nodes.csv rows
node_means() {
	awk -F, -v s="$1" -v l="$cur_layout" -v b="$cur_boot" -v n="$2" '
	$1 == s && $2 == l && $3 == b && $4 == n {
		c++; r += $6; bt += $7; rd += $8; f += $9; m += $10; lat += $11
		io += $12; if ($13 == "BAD") bad++; else dg[$13] = 1
	}
	END {
		k = 0; for (x in dg) k++
		printf "%.3f %.3f %.0f %.0f %.1f %.0f %.3f %s\n", r / c, bt / c,
			rd / c, f, m / c, lat / c, io / c,
			(bad ? "BAD" : k == 1 ? "yes" : "no")
	}' "$ncsv"
}

# nodes_cpu N: CPU-seconds used by the node processes that ended
nodes_cpu() {
	local i
	for i in $(seq "$1"); do cat "$W/n$i/cpu" 2>/dev/null || echo 0; done |
		awk '{ s += $1 } END { printf "%.1f", s }'
}

# row PHASE S N STORED_REPO STORED_NODES DIRTY ADDED [MEANS...]: one line
# of results.csv from the last measure begin/end
row() {
	local ph=$1 s=$2 n=$3 secs tr b u top hcpu m
	secs=$(elapsed "$t0" "$t1")
	tr=$(traffic "$W/c0" "$W/c1" "$secs" "$rb")
	b=$(busy "$c0" "$c1")
	set -- "$@" $tr
	# $8.. = traffic: wire nrx ntx rrx rtx util link bytes
	u=${13}
	top=$(cpu_top "$W/p0" "$W/p1" "$([ "$ph" = deploy ] && nodes_cpu "$n" || echo 0)" \
		"$(cat "$W/sender.cpu" 2>/dev/null || echo 0)")
	rm -f "$W/sender.cpu"
	hcpu=$(echo "$top" | tr ';' '\n' | awk -F: '$1 == "vmir-helper" { print $2 }')
	m=${means:-0 0 0 0 0 0 0 -}
	# co-located: the nodes' chunk servers are the repository, their
	# egress is what the nodes sent
	local rtx=${12}
	[ "$cur_layout" = coloc ] && rtx=$((${12} + ${10}))
	echo "$ph,$s,$cur_layout,$cur_boot,$n,$secs,$(echo "$m" | awk '{ print $1 "," $2 }'),$8,$9,${10},${11},$rtx,$4,$5,$(echo "$m" | awk '{ print $3 "," $4 "," $5 "," $6 "," $7 }'),$6,$7,$b,${hcpu:-0},$u,${14},${15},$link_Bps,$(bottleneck "$u" "$b" "${14}"),$top,$(echo "$m" | awk '{ print $8 }')" >>"$csv"
	note "$ph $s/$cur_layout/$cur_boot N=$n: $secs s, wire $(( $8 >> 20 )) MiB, CPU busy $b ($top), busiest link ${14} $u"
}

# deploy_row S N STORED_REPO STORED_NODES: rows of a finished deployment
deploy_row() {
	node_rows "$1" "$2"
	means=$(node_means "$1" "$2")
	row deploy "$1" "$2" "$3" "$4" 0 0
	means=
}

snap_off() { echo $(( (ib / 2) & ~((4 << 20) - 1) )); }

# fill_nodes N: every node writes its snapshot data at once (the same
# place, its own seed), through its disk
fill_nodes() {
	local i pids=
	for i in $(seq "$1"); do
		"$REPLAY" fill "$(cat "$W/n$i/dev")" "$(snap_off)" $((snapmib << 20)) \
			--seed $((1000 * $1 + i)) &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p" || die "writing the snapshot data failed"; done
}

# --- strategy: vmir ---------------------------------------------------------------

# coloc_start N: a chunk server on each node's link and disk, the image
# imported into them; sets vconf
coloc_start() {
	local n=$1 i list=
	for i in $(seq "$n"); do
		start_chunkd vb-n$i "$SCR/n$i/chunkd" "$W/n$i/chunkd.ready"
		list="$list${list:+, }$(ns_addr vb-n$i):7401"
	done
	wait_ready $(seq -f "$W/n%g/chunkd.ready" "$n")
	vconf=$W/vmir/coloc-$n.conf
	write_conf "$vconf" "$list"
	import_image "$vconf" "base-c$n" "coloc layout, N=$n chunk servers on the nodes"
	drop_caches
}

coloc_stop() {
	local i p
	for i in $(seq "$1"); do
		p=$(cat "$W/n$i/chunkd.ready.pid")
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null || true
	done
}

# vmir_disk I: node I attaches the image ($vflags: attach options)
vmir_disk() { VMIR_CONF=$vconf in_ns vb-n$1 vmirctl attach "$vimg@1" $vflags; }

# vmir_detach_all N: every node detaches its device
vmir_detach_all() {
	local i d
	for i in $(seq "$1"); do
		d=$(cat "$W/n$i/dev")
		VMIR_CONF=$vconf in_ns vb-n$i vmirctl detach "$d" >/dev/null ||
			die "vmirctl detach on node $i failed"
	done
}

# learned: vmir's second deployment. A first one (--no-prefetch, not
# measured) teaches every helper the boot's order, each publishes it as
# the version's profile (merged on the version server); all detach, and
# the measured deployment attaches on fresh mirrors, prefetching in the
# profile's order (docs/architecture.md, "Learned prefetch")
run_learned() { run_vmir "$1" no learned; }

# run_vmir N SNAP [learned]: a first deployment: no helper learns, no
# attach prefetches (whatever profile an earlier learned row left)
run_vmir() {
	local n=$1 snap=$2 mode=${3:-first} i hp= dirty=0 r0 r1 learn=--no-learn
	prep_nodes "$n"
	vconf=$conf vimg=base vflags=--no-prefetch
	if [ "$cur_layout" = coloc ]; then
		coloc_start "$n"
		vimg=base-c$n
	fi
	export VMIR_CONF=$vconf
	[ "$mode" = learned ] && learn=
	for i in $(seq "$n"); do
		mkdir -p "$SCR/n$i/mirrors" "$W/n$i/reg"
		# not through in_ns: $! must be the helper (ip netns exec
		# execs it), so that killing it below ends it
		ip netns exec vb-n$i vmir-helper --conf "$vconf" --mirror-root "$SCR/n$i/mirrors" \
			--reg-dir "$W/n$i/reg" --timeout-ms 120000 $learn ${rak:+--read-ahead-kib "$rak"} \
			</dev/null >"$W/n$i/helper.log" 2>&1 &
		hp="$hp $!"
	done
	for i in $(seq "$n"); do
		for _ in $(seq 500); do
			grep -q 'registered with the vmir module' "$W/n$i/helper.log" && break
			sleep 0.04
		done
		grep -q 'registered with the vmir module' "$W/n$i/helper.log" ||
			{ cat "$W/n$i/helper.log"; die "the helper of node $i did not register"; }
	done
	if [ "$mode" = learned ]; then
		for i in $(seq "$n"); do node_go "$i" vmir_disk "$i"; done
		nodes_wait "vmir, the deployment that teaches the profile"
		# each helper publishes once its device is idle (5 s)
		for i in $(seq "$n"); do
			for _ in $(seq 1500); do
				grep -qE 'published the access profile|(was|is) not published' \
					"$W/n$i/helper.log" && break
				sleep 0.04
			done
			grep -qE 'published the access profile|(was|is) not published' "$W/n$i/helper.log" ||
				{ tail -n 5 "$W/n$i/helper.log"; die "the helper of node $i did not learn the boot"; }
		done
		note "profile learned: $(grep -h -o 'published the access profile.*' "$W"/n*/helper.log | sort | uniq -c | tr '\n' ';')"
		vmir_detach_all "$n"
		for i in $(seq "$n"); do
			rm -rf "$SCR/n$i/mirrors"/* "$W/n$i/dev" "$W/n$i/ready" "$W/n$i/end"
		done
		drop_caches
		vflags=
	fi
	measure begin "$n"
	for i in $(seq "$n"); do node_go "$i" vmir_disk "$i"; done
	nodes_wait "$mode vmir"
	measure end "vmir-$cur_layout" "$n"
	deploy_row "$( [ "$mode" = learned ] && echo learned || echo vmir)" "$n" \
		"$(repo_bytes "$vconf")" "$(stored "$SCR"/n*/mirrors)"

	if [ "$snap" = yes ]; then
		# multi-snapshotting: new data on every node, then all
		# commit at once
		fill_nodes "$n"
		for i in $(seq "$n"); do
			set -- $(jstatus vb-n$i "$(cat "$W/n$i/dev")" dirty chunk_size)
			dirty=$((dirty + $1 * $2))
		done
		r0=$(repo_bytes "$vconf")
		measure begin
		pids=
		for i in $(seq "$n"); do
			VMIR_CONF=$vconf in_ns vb-n$i vmirctl commit "$(cat "$W/n$i/dev")" \
				--to "snap-$cur_layout-$cur_boot-$n-$i" >"$W/n$i/commit" 2>&1 &
			pids="$pids $!"
		done
		for p in $pids; do wait "$p" || { cat "$W"/n*/commit; die "a commit failed"; }; done
		measure end
		r1=$(repo_bytes "$vconf")
		row snapshot vmir "$n" "$r1" "$(stored "$SCR"/n*/mirrors)" "$dirty" $((r1 - r0))
	fi
	vmir_detach_all "$n"
	for p in $hp; do kill "$p"; wait "$p" 2>/dev/null || true; done
	[ "$cur_layout" = coloc ] && coloc_stop "$n"
	for i in $(seq "$n"); do rm -rf "$W/n$i" "$SCR/n$i"; done
}

# --- strategies that copy the whole image first ------------------------------------

# loop_disk I: node I's copy is complete: its loop device
loop_disk() { losetup -f --show "$SCR/n$1/image.raw"; }

# the copy strategies' deployment row and teardown
copy_done() {
	local s=$1 n=$2 i
	deploy_row "$s" "$n" "$(stored "$SCR/repo/base.img")" \
		"$(stored "$SCR"/n*/image.raw)"
	for i in $(seq "$n"); do
		losetup -d "$(cat "$W/n$i/dev")"
		rm -rf "$W/n$i" "$SCR/n$i"
	done
}

# chain: store -> n1 -> n2 -> ... -> nN at the rate of one link; a node
# boots as soon as it has the whole image
chain_disk() {
	local i=$1 next=
	[ "$i" -lt "$cur_n" ] && next="--next $(ns_addr vb-n$((i + 1))):7500"
	in_ns vb-n$i "$RELAY" recv "$(ns_addr vb-n$i):7500" --out "$SCR/n$i/image.raw" \
		$next --ready "$W/n$i/listening" >"$W/n$i/relay" || return 1
	loop_disk "$i"
}

run_chain() {
	local n=$1 i
	prep_nodes "$n"
	measure begin "$n"
	for i in $(seq "$n" -1 1); do node_go "$i" chain_disk "$i"; done
	for i in $(seq "$n"); do
		for _ in $(seq 500); do [ -f "$W/n$i/listening" ] && break; sleep 0.02; done
		[ -f "$W/n$i/listening" ] || die "the relay of node $i did not start"
	done
	(
		in_ns vb-st "$RELAY" send "$(ns_addr vb-n1):7500" "$SCR/repo/base.img" >"$W/send"
		rc=$?
		child_cpu "$W/sender.cpu"
		exit $rc
	) || die "sending the image down the chain failed"
	nodes_wait chain
	measure end chain "$n"
	copy_done chain "$n"
}

# taktuk: TakTuk (the paper's tool) broadcasts the image from the store
# through its own deployment tree, with its default arity and window. Its
# connector (relay connect/serve) is a plain TCP connection over the
# links, so every byte crosses the shaped links and the counters.
taktuk_disk() {
	local i=$1
	for _ in $(seq 200000); do [ -f "$W/n$i/got" ] && break; sleep 0.05; done
	[ -f "$W/n$i/got" ] || return 1
	loop_disk "$i"
}

run_taktuk() {
	local n=$1 i hosts= srv=
	prep_nodes "$n"
	cat >"$W/taktuk-connect" <<EOF
#!/bin/sh
# TakTuk connector: HOST CMD... over a TCP connection to the node HOST (nI)
h=\$1
shift
exec $RELAY connect 198.18.1.\${h#n}:7700 "\$@"
EOF
	# on the node: the image from TakTuk's stdin into its copy, sparse
	cat >"$W/taktuk-recv" <<EOF
#!/bin/sh
set -e
f=$SCR/\$TAKTUK_HOSTNAME/image.raw
dd of="\$f" bs=1M iflag=fullblock conv=sparse status=none
truncate -s $ib "\$f"
sync "\$f"
: >$W/\$TAKTUK_HOSTNAME/got
EOF
	chmod +x "$W/taktuk-connect" "$W/taktuk-recv"
	for i in $(seq "$n"); do
		ip netns exec vb-n$i "$RELAY" serve "$(ns_addr vb-n$i):7700" \
			--ready "$W/n$i/serving" </dev/null >"$W/n$i/serve.log" 2>&1 &
		srv="$srv $!"
		hosts="$hosts -m n$i"
	done
	for i in $(seq "$n"); do
		for _ in $(seq 500); do [ -f "$W/n$i/serving" ] && break; sleep 0.02; done
		[ -f "$W/n$i/serving" ] || die "the TakTuk listener of node $i did not start"
	done
	measure begin "$n"
	for i in $(seq "$n"); do node_go "$i" taktuk_disk "$i"; done
	(
		in_ns vb-st taktuk -s -c "$W/taktuk-connect" $hosts \
			broadcast exec [ "$W/taktuk-recv" ] \; \
			broadcast input file [ "$SCR/repo/base.img" ] >"$W/taktuk.log" 2>&1
		rc=$?
		child_cpu "$W/sender.cpu"
		exit $rc
	) || { tail -n 20 "$W/taktuk.log"; die "the TakTuk broadcast failed"; }
	grep -q 'Exited with status [1-9]' "$W/taktuk.log" &&
		{ grep 'status' "$W/taktuk.log" | head; die "TakTuk: a node's copy failed"; }
	nodes_wait taktuk
	measure end taktuk "$n"
	for p in $srv; do kill "$p"; wait "$p" 2>/dev/null || true; done
	copy_done taktuk "$n"
}

# floor: every node holds its local copy before the clock starts
floor_disk() { cat "$W/n$1/dev0"; }

run_floor() {
	local n=$1 i
	prep_nodes "$n"
	for i in $(seq "$n"); do
		cp --sparse=always "$SCR/repo/base.img" "$SCR/n$i/image.raw" ||
			die "cannot copy the image for node $i"
		loop_disk "$i" >"$W/n$i/dev0" || die "losetup for node $i failed"
	done
	drop_caches
	measure begin "$n"
	for i in $(seq "$n"); do node_go "$i" floor_disk "$i"; done
	nodes_wait floor
	measure end floor "$n"
	copy_done floor "$n"
}

# --- strategy: qcow2 overlay over NBD ---------------------------------------------

nbd_server=
start_nbd_server() {
	[ -n "$nbd_server" ] && return 0
	ip netns exec vb-st qemu-nbd -r -t -f raw -x base -b "$(ns_addr vb-st)" -p 10809 \
		-e 128 "$SCR/repo/base.img" </dev/null >"$W/qemu-nbd.log" 2>&1 &
	nbd_server=$!
	helper_pids="$helper_pids $nbd_server"
	sleep 1
	kill -0 "$nbd_server" 2>/dev/null || { cat "$W/qemu-nbd.log"; die "qemu-nbd server did not start"; }
}

qcow2_disk() {
	local i=$1 dev=/dev/nbd$(($1 - 1))
	in_ns vb-n$i qemu-img create -q -f qcow2 -F raw \
		-b "nbd://$(ns_addr vb-st):10809/base" "$SCR/n$i/overlay.qcow2" || return 1
	in_ns vb-n$i qemu-nbd -c "$dev" -f qcow2 --cache=writeback \
		"$SCR/n$i/overlay.qcow2" || return 1
	for _ in $(seq 250); do
		[ "$(cat /sys/block/${dev#/dev/}/size)" != 0 ] && break
		sleep 0.02
	done
	echo "$dev"
}

run_qcow2() {
	local n=$1 snap=$2 i pids= dirty=0 added
	start_nbd_server
	prep_nodes "$n"
	measure begin "$n"
	for i in $(seq "$n"); do node_go "$i" qcow2_disk "$i"; done
	nodes_wait qcow2
	measure end qcow2 "$n"
	deploy_row qcow2 "$n" "$(stored "$SCR/repo/base.img")" \
		"$(stored "$SCR"/n*/overlay.qcow2)"

	if [ "$snap" = yes ]; then
		# multi-snapshotting: the same new data, then every overlay
		# copied to the store at once
		fill_nodes "$n"
		for i in $(seq "$n"); do
			qemu-nbd -d "$(cat "$W/n$i/dev")" >/dev/null || die "qemu-nbd -d on node $i failed"
			dirty=$((dirty + $(stored "$SCR/n$i/overlay.qcow2")))
		done
		mkdir -p "$SCR/repo/overlays"
		pids=
		for i in $(seq "$n"); do
			rm -f "$W/n$i/listening"
			in_ns vb-st "$RELAY" recv "$(ns_addr vb-st):$((7600 + i))" \
				--out "$SCR/repo/overlays/snap-$n-$i.qcow2" --ready "$W/n$i/listening" >/dev/null &
			pids="$pids $!"
		done
		for i in $(seq "$n"); do
			for _ in $(seq 500); do [ -f "$W/n$i/listening" ] && break; sleep 0.02; done
		done
		measure begin
		for i in $(seq "$n"); do
			in_ns vb-n$i "$RELAY" send "$(ns_addr vb-st):$((7600 + i))" "$SCR/n$i/overlay.qcow2" >/dev/null &
			pids="$pids $!"
		done
		for p in $pids; do wait "$p" || die "copying an overlay failed"; done
		measure end
		added=$(stored "$SCR"/repo/overlays/snap-$n-*.qcow2)
		row snapshot qcow2 "$n" "$(stored "$SCR/repo/base.img" "$SCR/repo/overlays")" 0 "$dirty" "$added"
		rm -rf "$SCR/repo/overlays"
	else
		for i in $(seq "$n"); do
			qemu-nbd -d "$(cat "$W/n$i/dev")" >/dev/null || die "qemu-nbd -d on node $i failed"
		done
	fi
	for i in $(seq "$n"); do rm -rf "$W/n$i" "$SCR/n$i"; done
}

# --- run ------------------------------------------------------------------------------

node_pids= means=
for n in ${nodes//,/ }; do
	cur_n=$n
	modes=$boot
	[ "$boot" = replay ] && in_list "$n" "$realn" && modes="replay real"
	for s in ${strategies//,/ }; do
		lays=-
		case $s in vmir|learned) lays=${layouts//,/ } ;; esac
		for cur_layout in $lays; do
			for cur_boot in $modes; do
				note "--- $s$([ "$cur_layout" = - ] || echo "/$cur_layout")/$cur_boot, N=$n"
				snap=no
				[ "$cur_boot" = "$boot" ] && snap=yes
				run_$s "$n" "$snap"
			done
		done
	done
done
awk -F, -v ib="$ib" -v al="$(stored "$SCR/repo/base.img")" '
NR > 1 && $1 == "deploy" && $4 == "real" { s += $16; c++ }
END { if (c) printf "A real boot reads %.1f MiB through its disk: %.1f %% of the %d MiB image, %.1f %% of its %d MiB of allocated data.\n",
	s / c / 1048576, 100 * s / c / ib, ib / 1048576, 100 * s / c / al, al / 1048576 }' "$csv" >>"$res/params.md"
note "done: $csv"
