# SPDX-License-Identifier: GPL-2.0
# Sourced by bench/multideploy on the host: plots and summary.md from
# results.csv (columns in bench/README.md). Every number in the summary
# comes from results.csv and params.md of the run that wrote them.

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.3f", a / b }'
}

# field CSV PHASE STRATEGY LAYOUT BOOT NODES COLUMN
field() {
	awk -F, -v p="$2" -v s="$3" -v l="$4" -v b="$5" -v n="$6" -v c="$7" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$1 == p && $2 == s && $3 == l && $4 == b && $5 == n { print $col[c]; exit }' "$1"
}

# the series of a plot: "strategy layout" pairs present in the CSV
series() {
	awk -F, 'NR > 1 { k = $2 " " $3; if (!(k in s)) { s[k] = 1; print k } }' "$1"
}

# plot DIR PNG TITLE YLABEL PHASE BOOT EXPR: one line per series against N
plot() {
	local dir=$1 png=$2 title=$3 ylabel=$4 ph=$5 b=$6 expr=$7 cmd= s l f t xmax
	xmax=$(awk -F, 'NR > 1 { if ($5 > m) m = $5 } END { print m + 0 }' "$dir/results.csv")
	while read -r s l; do
		f=$dir/.$ph-$s-$l.dat
		awk -F, -v p="$ph" -v s="$s" -v l="$l" -v b="$b" '
		NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		$1 == p && $2 == s && $3 == l && $4 == b { print $5, '"$expr"' }' \
			"$dir/results.csv" | sort -n >"$f"
		[ -s "$f" ] || continue
		t=$s
		[ "$l" = - ] || t=$s/$l
		cmd="$cmd${cmd:+, }'$f' using 1:2 with linespoints lw 2 title '$t'"
	done < <(series "$dir/results.csv")
	if [ -n "$cmd" ]; then
		gnuplot <<EOP || die "gnuplot failed for $png"
set terminal png size 900,560
set output '$png'
set title '$title'
set xlabel 'compute nodes (N, log scale)'
set ylabel '$ylabel'
set logscale x 2
set logscale y 10
set xrange [0.8:$((xmax * 5 / 4 + 1))]
set key left top
set grid
plot $cmd
EOP
	fi
	rm -f "$dir"/.*.dat
}

report() {
	local dir=$1 csv=$1/results.csv b
	[ -f "$csv" ] || die "no $csv: run bench/multideploy first"
	command -v gnuplot >/dev/null || die "gnuplot not found (apt-get install gnuplot-nox)"
	# the main boot mode: replay when there is any
	b=real
	grep -q '^deploy,[^,]*,[^,]*,replay,' "$csv" && b=replay
	plot "$dir" "$dir/deploy-time.png" "multi-deployment ($b boot): time until the last node finished" \
		"seconds (log scale)" deploy $b '$c["time_s"]'
	plot "$dir" "$dir/deploy-traffic.png" "multi-deployment ($b boot): bytes on the wire" \
		"MiB (log scale)" deploy $b '($c["wire_bytes"] + 1) / 1048576'
	plot "$dir" "$dir/deploy-egress.png" "multi-deployment ($b boot): bytes that left the repository" \
		"MiB (log scale)" deploy $b '($c["repo_tx_bytes"] + 1) / 1048576'
	plot "$dir" "$dir/snapshot-time.png" "multi-snapshotting: time to commit / copy overlays out" \
		"seconds (log scale)" snapshot $b '$c["time_s"]'
	plot "$dir" "$dir/snapshot-traffic.png" "multi-snapshotting: bytes on the wire" \
		"MiB (log scale)" snapshot $b '($c["wire_bytes"] + 1) / 1048576'
	{
		echo "# multideploy results"
		echo
		cat "$dir/params.md" 2>/dev/null
		[ -f "$dir/trace-info.txt" ] && echo "Trace: $(cat "$dir/trace-info.txt")."
		echo
		deploy_table "$csv" "$b"
		real_table "$csv"
		ratio_table "$csv" "$b"
		learned_table "$csv" "$b"
		vmir_table "$csv" "$b"
		snapshot_table "$csv"
		[ -f "$dir/analysis.md" ] && { cat "$dir/analysis.md"; echo; }
		echo "Plots: deploy-time.png, deploy-traffic.png, deploy-egress.png, snapshot-time.png, snapshot-traffic.png (log scales). Raw data: results.csv, per node nodes.csv, per step of the real boots steps.csv."
	} >"$dir/summary.md"
	echo "$prog: wrote $dir/summary.md and plots"
}

# the time the network alone allows a row: its busiest link's bytes at the
# calibrated link rate, plus, for the strategies that boot only once they
# hold the whole image, the floor's mean boot at the same N
# (awk, with c[] the columns and fl[N] the floor's mean boot)
net_allows_awk='
function allows(s) {
	a = $c["busiest_link_bytes"] / ($c["link_Bps"] > 0 ? $c["link_Bps"] : 1)
	if ((s == "taktuk" || s == "chain") && ($5 in fl)) a += fl[$5]
	return a
}'

deploy_table() {
	local csv=$1 b=$2
	echo "## Multi-deployment ($b boot)"
	echo
	echo "Time until the last node finished its boot, mean per node, bytes on the links (interface counters), bytes that left the repository's links, bytes stored. *Network allows*: the busiest link's bytes at the calibrated rate (plus, for TakTuk and the chain, the floor's boot): what this strategy's own bottleneck allows. A baseline marked **CPU-bound** spent the run waiting for the guest's two emulated CPUs (busy >= 0.85), not for its network or disk: it is not a fair peer at that N, and the time its network allows is beside it. *Bottleneck*: a link at >= 80 % of its rate (for a copy strategy, over its copy: \"(copy)\"), else the CPU at >= 85 %, else latency."
	echo
	echo "| N | strategy | last node (s) | mean node (s) | mean boot (s) | wire MiB | repo egress MiB | repo stored MiB | nodes stored MiB | CPU busy | busiest link | util | bottleneck | network allows (s) | check |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	awk -F, -v b="$b" "$net_allows_awk"'
	NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	{ rows[NR] = $0 }
	$1 == "deploy" && $2 == "floor" && $4 == b { fl[$5] = $c["mean_boot_s"] }
	END {
		for (r = 2; r <= NR; r++) {
			if (!(r in rows)) continue
			$0 = rows[r]
			if ($1 != "deploy" || $4 != b) continue
			s = $2 (($3 == "-") ? "" : "/" $3)
			bn = $c["bottleneck"]
			# a copy strategy moves its bytes before the boots: the
			# use of the busiest link over the copy, not the whole run
			ready = $c["mean_ready_s"]
			if (ready > 0.25 * $c["time_s"] && $c["link_Bps"] > 0 &&
			    $c["busiest_link_bytes"] / (ready * $c["link_Bps"]) >= 0.8)
				bn = "link " $c["busiest_link"] " (copy)"
			else if ($c["cpu_busy"] >= 0.85)
				bn = "cpu"
			if (bn == "cpu" && $2 != "vmir" && $2 != "learned" && $2 != "floor") bn = "**CPU-bound**"
			printf "| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %s | %.2f | %s | %.1f | %s |\n",
				$5, s, $c["time_s"], $c["mean_ready_s"] + $c["mean_boot_s"],
				$c["mean_boot_s"], $c["wire_bytes"] / 1048576,
				$c["repo_tx_bytes"] / 1048576, $c["stored_repo_bytes"] / 1048576,
				$c["stored_node_bytes"] / 1048576, $c["cpu_busy"],
				$c["busiest_link"], $c["max_link_util"], bn, allows($2), $c["check"]
		}
	}' "$csv"
	echo
	echo "check: the replayed nodes' written data verified on their disks (verified: yes), or the real boots' output digests equal on all nodes (yes)."
	echo
}

real_table() {
	local csv=$1
	grep -q '^deploy,[^,]*,[^,]*,real,' "$csv" && grep -q '^deploy,[^,]*,[^,]*,replay,' "$csv" || return 0
	echo "## Real boot beside the replay"
	echo
	echo "The same deployment with the real boot (bench/boot-workload) and with its replay, in the same run. Where the guest's CPU is not saturated the two should agree; where the real boots saturate it (CPU busy near 1), the real rows measure the emulated CPU."
	echo
	echo "| N | strategy | real: last node (s) | replay: last node (s) | replay/real | real: CPU busy | replay: CPU busy |"
	echo "|---|---|---|---|---|---|---|"
	awk -F, '
	NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	$1 == "deploy" { k = $5 "|" $2 (($3 == "-") ? "" : "/" $3); t[k, $4] = $c["time_s"]; u[k, $4] = $c["cpu_busy"]; if ($4 == "real") ks[++n] = k }
	END {
		for (i = 1; i <= n; i++) {
			k = ks[i]; split(k, p, "|")
			if (!((k, "replay") in t)) continue
			printf "| %s | %s | %.1f | %.1f | %.3f | %.2f | %.2f |\n", p[1], p[2],
				t[k, "real"], t[k, "replay"], t[k, "replay"] / t[k, "real"],
				u[k, "real"], u[k, "replay"]
		}
	}' "$csv"
	echo
}

ratio_table() {
	local csv=$1 b=$2 ns n l p cells
	ns=$(awk -F, -v b="$b" 'NR > 1 && $1 == "deploy" && $4 == b { print $5 }' "$csv" | sort -un)
	echo "## Ratios (same run, $b boot): vmir's time divided by each peer's"
	echo
	echo "Below 1: vmir finished first. Against the floor, the ratio is what vmir costs over a node that already holds its copy. A ratio against a peer marked CPU-bound above compares with a time the emulated CPU set: see the table above for the time its network allows."
	echo
	echo "| N | layout | vs TakTuk | vs chain | vs qcow2 | vs floor | wire vs chain | wire vs qcow2 | egress vs qcow2 |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for n in $ns; do
		for l in tier coloc; do
			local t w e
			t=$(field "$csv" deploy vmir $l "$b" "$n" time_s)
			[ -n "$t" ] || continue
			w=$(field "$csv" deploy vmir $l "$b" "$n" wire_bytes)
			e=$(field "$csv" deploy vmir $l "$b" "$n" repo_tx_bytes)
			cells=
			for p in taktuk chain qcow2 floor; do
				cells="$cells | $(ratio "$t" "$(field "$csv" deploy $p - "$b" "$n" time_s)")"
			done
			echo "| $n | $l$cells | $(ratio "$w" "$(field "$csv" deploy chain - "$b" "$n" wire_bytes)") | $(ratio "$w" "$(field "$csv" deploy qcow2 - "$b" "$n" wire_bytes)") | $(ratio "$e" "$(field "$csv" deploy qcow2 - "$b" "$n" repo_tx_bytes)") |"
		done
	done
	echo
}

# the second deployment (learned prefetch) against the first and the floor
learned_table() {
	local csv=$1 b=$2
	grep -q '^deploy,learned,' "$csv" || return 0
	echo "## Second deployment: learned prefetch"
	echo
	echo "*learned*: the same deployment as vmir's, after a first one (not measured) taught every helper the boot's order and each published it as the version's profile; the measured one attaches on fresh mirrors and prefetches in that order. Goal (issue 12, N=1): the second at least 1.35x faster than the first (vmir), and within 1.25x of the floor."
	echo
	echo "| N | layout | first: vmir (s) | second: learned (s) | first/second | second/floor | misses/node first, second | fetched MiB/node first, second |"
	echo "|---|---|---|---|---|---|---|---|"
	awk -F, -v b="$b" '
	NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	$1 == "deploy" && $4 == b { k = $2 SUBSEP $3 SUBSEP $5; t[k] = $c["time_s"]; m[k] = $c["misses"]; f[k] = $c["fetched_bytes"] / $5 / 1048576; if ($2 == "learned") rows[++nr] = $3 SUBSEP $5 }
	END {
		for (r = 1; r <= nr; r++) {
			split(rows[r], a, SUBSEP); l = a[1]; n = a[2]
			v = "vmir" SUBSEP l SUBSEP n; s = "learned" SUBSEP l SUBSEP n; fl = "floor" SUBSEP "-" SUBSEP n
			printf "| %s | %s | %s | %.1f | %s | %s | %s, %.1f | %s, %.1f |\n", n, l,
				(v in t) ? sprintf("%.1f", t[v]) : "-", t[s],
				(v in t) ? sprintf("%.2f", t[v] / t[s]) : "-",
				(fl in t) ? sprintf("%.2f", t[s] / t[fl]) : "-",
				(v in m) ? sprintf("%.1f", m[v]) : "-", m[s],
				(v in f) ? sprintf("%.1f", f[v]) : "-", f[s]
		}
	}' "$csv"
	echo
}

# where vmir's time goes, and the peers it did not beat
vmir_table() {
	local csv=$1 b=$2
	grep -q '^deploy,vmir,' "$csv" || return 0
	echo "## Where vmir's time goes"
	echo
	echo "Per vmir deployment: the floor at the same N, what each node fetched (chunk misses, mean fetch latency seen by the module, bytes), the repository's egress and its busiest link, the helpers' CPU and the guest's (CPU-seconds by process: the biggest five, *nodes* = the node-side processes that ran and ended in the deployment: replay or boot, relay, losetup). Then the peers vmir did not beat at that N."
	echo
	echo "| N | layout | vmir (s) | floor (s) | misses/node | fetch latency (ms) | fetched MiB/node | repo egress MiB | busiest link | util | helpers CPU-s | CPU busy | CPU-s by process | slower than |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	awk -F, -v b="$b" '
	NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	$1 == "deploy" && $4 == b { t[$2 (($3 == "-") ? "" : "/" $3), $5] = $c["time_s"]; rows[NR] = $0 }
	END {
		for (r = 2; r <= NR; r++) {
			if (!(r in rows)) continue
			$0 = rows[r]
			if ($2 != "vmir") continue
			n = $5; lost = ""
			split("taktuk chain qcow2 floor", p, " ")
			for (i = 1; i <= 4; i++)
				if ((p[i], n) in t && t[p[i], n] < $c["time_s"])
					lost = lost (lost == "" ? "" : ", ") sprintf("%s (%.2fx)", p[i], $c["time_s"] / t[p[i], n])
			nn = n + 0
			top = $c["top_cpu"]; gsub(/;/, ", ", top); gsub(/:/, " ", top)
			printf "| %s | %s | %.1f | %s | %.1f | %.1f | %.1f | %.1f | %s | %.2f | %.1f | %.2f | %s | %s |\n",
				n, $3, $c["time_s"], (("floor", n) in t) ? sprintf("%.1f", t["floor", n]) : "-",
				$c["misses"], $c["fetch_lat_us"] / 1000, $c["fetched_bytes"] / nn / 1048576,
				$c["repo_tx_bytes"] / 1048576, $c["busiest_link"], $c["max_link_util"],
				$c["helper_cpu_s"], $c["cpu_busy"], top, (lost == "" ? "none" : lost)
		}
	}' "$csv"
	echo
}

snapshot_table() {
	local csv=$1
	grep -q '^snapshot,' "$csv" || return 0
	echo "## Multi-snapshotting"
	echo
	echo "Every node writes the same amount of new data (its own seed, through its disk), then all snapshot at once: vmir \`vmirctl commit\` (tier: to the chunk-server machines; coloc: to the nodes' own chunk servers), qcow2: every overlay copied to the store."
	echo
	echo "| N | strategy | time (s) | wire MiB | dirty MiB | moved/dirty | added to repo MiB | CPU busy | busiest link | util | bottleneck |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	$1 == "snapshot" { d = $c["dirty_bytes"]; printf "| %s | %s | %.1f | %.1f | %.1f | %s | %.1f | %.2f | %s | %.2f | %s |\n",
		$5, $2 (($3 == "-") ? "" : "/" $3), $c["time_s"], $c["wire_bytes"] / 1048576, d / 1048576,
		(d > 0 ? sprintf("%.3f", $c["wire_bytes"] / d) : "-"),
		$c["added_bytes"] / 1048576, $c["cpu_busy"], $c["busiest_link"],
		$c["max_link_util"], $c["bottleneck"] }' "$csv"
	echo
}
