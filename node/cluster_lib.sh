# cluster_lib.sh: shell helpers for real-process keel clusters on loopback,
# sourced by tests/test_cluster*.sh (POSIX sh).
#
#   cl_setup            work dir, free ports, cleanup trap (KEEL_BIN: binaries)
#   cl_boot N           start N bootstrapping nodes (retries on a port clash)
#   cl_start I          (re)start node I from its data directory
#   cl_join I ADDRS     start node I on an empty directory with --join ADDRS
#   cl_restart I        restart node I with --data only (all from DIR)
#   cl_signal I SIG     send SIG to node I
#   cl_leader           print the leader's id (empty if none agreed)
#   cl_wait_leader S    wait up to S seconds for a leader; print its id
#   cl_ctl ARGS...      keelctl against every node
#   cl_wait_log I RE S  wait up to S seconds for RE (grep) in node I's log
#   cl_join_id I        the id node I was given when it joined (its log)
#   check NAME CMD...   run CMD; count a pass or a failure
#   cl_finish           print "N passed, M failed"; exit status
#
# Every process started here is killed (SIGKILL, by pid) on exit.

KEEL_BIN=${KEEL_BIN:-bin}
CL_PASS=0
CL_FAIL=0
CL_N=0

cl_cleanup() {
	for f in "$CL_DIR"/pid.*; do
		[ -f "$f" ] || continue
		kill -CONT "$(cat "$f")" 2>/dev/null
		kill -9 "$(cat "$f")" 2>/dev/null
	done
	# Belt and braces: any process still running with this run's private
	# data directory on its command line was started here.
	for d in /proc/[0-9]*; do
		if { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -q -- "--data $CL_DIR/"; then
			kill -9 "${d#/proc/}" 2>/dev/null
		fi
	done
	if [ "$CL_FAIL" -ne 0 ] || [ -n "${CL_KEEP:-}" ]; then
		echo "logs kept in $CL_DIR"
	else
		rm -rf "$CL_DIR"
	fi
}

cl_setup() {
	# Under this checkout's build directory, so runs from several
	# checkouts never share (or clean up) each other's directories.
	mkdir -p "${KEEL_BUILD:-build}/cluster-runs"
	CL_DIR=$(mktemp -d "$(cd "${KEEL_BUILD:-build}/cluster-runs" && pwd)/run.XXXXXX")
	trap 'cl_cleanup' EXIT
	trap 'exit 1' INT TERM
}

cl_pick_ports() {
	r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	CL_BASE=$((20000 + (r % 600) * 20)) # below the ephemeral range
}

cl_peer_port() { echo $((CL_BASE + $1)); }
cl_client_port() { echo $((CL_BASE + 10 + $1)); }
cl_http_addr() { echo "127.0.0.1:$((CL_BASE + 5 + $1))"; }
cl_redis_addr() { echo "127.0.0.1:$((CL_BASE + 15 + $1))"; }
cl_client_addr() { echo "127.0.0.1:$(cl_client_port "$1")"; }
cl_peer_addr() { echo "127.0.0.1:$(cl_peer_port "$1")"; }

cl_endpoints() {
	e=""
	i=1
	while [ "$i" -le "$CL_N" ]; do
		e="$e${e:+,}$(cl_client_addr "$i")"
		i=$((i + 1))
	done
	echo "$e"
}

cl_start() {
	i=$1
	# shellcheck disable=SC2086
	"$KEEL_BIN/keel" --id "$i" --data "$CL_DIR/n$i" \
		--listen "$(cl_peer_addr "$i")" --client "$(cl_client_addr "$i")" \
		--peers "$CL_PEERS" --bootstrap --http "$(cl_http_addr "$i")" \
		--redis "$(cl_redis_addr "$i")" ${CL_FLAGS:-} \
		>>"$CL_DIR/log.$i" 2>&1 &
	echo $! >"$CL_DIR/pid.$i"
}

cl_join() {
	i=$1
	# shellcheck disable=SC2086
	"$KEEL_BIN/keel" --join "$2" --data "$CL_DIR/n$i" \
		--listen "$(cl_peer_addr "$i")" --client "$(cl_client_addr "$i")" \
		--http "$(cl_http_addr "$i")" ${CL_FLAGS:-} \
		>>"$CL_DIR/log.$i" 2>&1 &
	echo $! >"$CL_DIR/pid.$i"
}

cl_restart() {
	i=$1
	# shellcheck disable=SC2086
	"$KEEL_BIN/keel" --data "$CL_DIR/n$i" --http "$(cl_http_addr "$i")" \
		${CL_FLAGS:-} >>"$CL_DIR/log.$i" 2>&1 &
	echo $! >"$CL_DIR/pid.$i"
}

cl_pid() { cat "$CL_DIR/pid.$1"; }

cl_alive() { kill -0 "$(cl_pid "$1")" 2>/dev/null; }

cl_signal() { kill -"$2" "$(cl_pid "$1")" 2>/dev/null; }

cl_boot() {
	CL_N=$1
	tries=0
	while [ "$tries" -lt 5 ]; do
		tries=$((tries + 1))
		cl_pick_ports
		CL_PEERS=""
		i=1
		while [ "$i" -le "$CL_N" ]; do
			CL_PEERS="$CL_PEERS${CL_PEERS:+,}$i=$(cl_peer_addr "$i")/$(cl_client_addr "$i")"
			i=$((i + 1))
		done
		i=1
		while [ "$i" -le "$CL_N" ]; do
			rm -rf "$CL_DIR/n$i"
			cl_start "$i"
			i=$((i + 1))
		done
		sleep 0.5
		ok=1
		i=1
		while [ "$i" -le "$CL_N" ]; do
			cl_alive "$i" || ok=0
			i=$((i + 1))
		done
		[ "$ok" -eq 1 ] && return 0
		# A port was taken: stop what started and try other ports.
		i=1
		while [ "$i" -le "$CL_N" ]; do
			cl_signal "$i" 9
			i=$((i + 1))
		done
		sleep 0.2
	done
	echo "cannot start a cluster: no free ports after $tries tries"
	return 1
}

cl_ctl() {
	"$KEEL_BIN/keelctl" --endpoints "$(cl_endpoints)" --timeout-ms 500 --attempts 20 "$@"
}

cl_wait_log() {
	end=$(($(date +%s) + $3))
	while [ "$(date +%s)" -le "$end" ]; do
		grep -q "$2" "$CL_DIR/log.$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

cl_join_id() {
	sed -n 's/.*joined cluster [0-9]* as node \([0-9]*\) .*/\1/p' "$CL_DIR/log.$1" | head -n 1
}

cl_ctl_one() {
	n=$1
	shift
	"$KEEL_BIN/keelctl" --endpoints "$(cl_client_addr "$n")" --timeout-ms 500 --attempts 1 "$@"
}

# cl_append_n KEY N: append "x1," ... "xN," to KEY; prints the value they
# make; fails at the first append not acknowledged.
cl_append_n() {
	v=""
	j=1
	while [ "$j" -le "$2" ]; do
		cl_ctl append "$1" "x$j," >/dev/null || return 1
		v="${v}x$j,"
		j=$((j + 1))
	done
	echo "$v"
}

# cl_every_node_has KEY VALUE: every node's stale read of KEY is VALUE
# within 15 s.
cl_every_node_has() {
	end=$(($(date +%s) + 15))
	while [ "$(date +%s)" -le "$end" ]; do
		ok=0
		j=1
		while [ "$j" -le "$CL_N" ]; do
			[ "$(cl_ctl_one "$j" get "$1" --stale 2>/dev/null)" = "$2" ] && ok=$((ok + 1))
			j=$((j + 1))
		done
		[ "$ok" -eq "$CL_N" ] && return 0
		sleep 0.2
	done
	return 1
}

cl_leader() {
	i=1
	while [ "$i" -le "$CL_N" ]; do
		if cl_alive "$i"; then
			s=$(cl_ctl_one "$i" status 2>/dev/null)
			if echo "$s" | grep -q '^role leader$'; then
				echo "$s" | sed -n 's/^id //p'
				return 0
			fi
		fi
		i=$((i + 1))
	done
	return 1
}

cl_wait_leader() {
	end=$(($(date +%s) + $1))
	while [ "$(date +%s)" -le "$end" ]; do
		l=$(cl_leader) && { echo "$l"; return 0; }
		sleep 0.1
	done
	return 1
}

check() {
	name=$1
	shift
	if "$@"; then
		CL_PASS=$((CL_PASS + 1))
		echo "ok   $name"
	else
		CL_FAIL=$((CL_FAIL + 1))
		echo "FAIL $name"
	fi
}

cl_no_sanitizer_reports() {
	! grep -q "runtime error\|Sanitizer" "$CL_DIR"/log.* 2>/dev/null
}

cl_finish() {
	check "no sanitizer report in any node log" cl_no_sanitizer_reports
	echo "$CL_PASS passed, $CL_FAIL failed"
	[ "$CL_FAIL" -eq 0 ]
}
