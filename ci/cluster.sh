#!/bin/sh
# cluster.sh: a local 3-node keel cluster for trying keel out.
#
#   sh ci/cluster.sh start   (make run)  start it, wait for a leader, write and
#                            read one key, print how to use it
#   sh ci/cluster.sh stop    (make stop) stop exactly the processes it started
#
# Data, logs and pid files live under run/ (git-ignored). Ports: clients
# 7101-7103, peers 7001-7003, HTTP 7201-7203, Redis protocol 7301-7303;
# override the bases with KEEL_CLIENT_BASE, KEEL_PEER_BASE, KEEL_HTTP_BASE,
# KEEL_REDIS_BASE (node i uses BASE+i).
set -u
cd "$(dirname "$0")/.."
RUN=run
BIN=${KEEL_BIN:-bin}
CB=${KEEL_CLIENT_BASE:-7100}
PB=${KEEL_PEER_BASE:-7000}
HB=${KEEL_HTTP_BASE:-7200}
RB=${KEEL_REDIS_BASE:-7300}
N=3

is_ours() { # pid file -> true when that pid is a live keel we started
	[ -f "$1" ] || return 1
	pid=$(cat "$1")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "keel --id"
}

endpoints() {
	e=""
	for i in $(seq 1 $N); do e="$e${e:+,}127.0.0.1:$((CB + i))"; done
	echo "$e"
}

start() {
	running=""
	for i in $(seq 1 $N); do
		is_ours "$RUN/node$i.pid" && running="$running $(cat "$RUN/node$i.pid")"
	done
	if [ -n "$running" ]; then
		echo "keel: the local cluster is already running (pids$running); nothing changed."
		echo "keel: stop it with: make stop"
		return 0
	fi
	if [ ! -x "$BIN/keel" ] || [ ! -x "$BIN/keelctl" ]; then
		echo "keel: $BIN/keel is not built; run make" >&2
		return 1
	fi
	mkdir -p "$RUN"
	peers=""
	for i in $(seq 1 $N); do
		peers="$peers${peers:+,}$i=127.0.0.1:$((PB + i))/127.0.0.1:$((CB + i))"
	done
	for i in $(seq 1 $N); do
		"$BIN/keel" --id "$i" --data "$RUN/node$i" --listen "127.0.0.1:$((PB + i))" \
			--client "127.0.0.1:$((CB + i))" --http "127.0.0.1:$((HB + i))" \
			--redis "127.0.0.1:$((RB + i))" \
			--peers "$peers" --bootstrap >>"$RUN/node$i.log" 2>&1 &
		echo $! >"$RUN/node$i.pid"
	done
	ctl="$BIN/keelctl --endpoints $(endpoints)"
	tries=0
	until $ctl status 2>/dev/null | grep -q '^leader [1-9]'; do
		tries=$((tries + 1))
		for i in $(seq 1 $N); do
			if ! is_ours "$RUN/node$i.pid"; then
				echo "keel: node $i exited; its log ($RUN/node$i.log) ends with:" >&2
				tail -n 5 "$RUN/node$i.log" >&2
				stop >/dev/null
				return 1
			fi
		done
		if [ "$tries" -gt 150 ]; then
			echo "keel: no leader after 15 s; see $RUN/node*.log" >&2
			return 1
		fi
		sleep 0.1
	done
	$ctl put hello world >/dev/null && v=$($ctl get hello)
	if [ "${v:-}" != "world" ]; then
		echo "keel: the cluster started but a write and read failed; see $RUN/node*.log" >&2
		return 1
	fi
	leader=$($ctl status | sed -n 's/^leader //p')
	cat <<USAGE
keel: a 3-node cluster is running on 127.0.0.1 (leader: node $leader).
  clients  $(endpoints)
  data     $RUN/node1 .. $RUN/node3 (logs: $RUN/node*.log)
  metrics  curl http://127.0.0.1:$((HB + 1))/metrics   (status: /status)
  redis    redis-cli -p $((RB + 1)) set k v   (ports $((RB + 1))-$((RB + N)); GET SET DEL PING)
It holds hello=world. Try:
  export KEEL_ENDPOINTS=$(endpoints)
  $BIN/keelctl put greeting hi
  $BIN/keelctl get greeting
  $BIN/keelctl get greeting --stale
  $BIN/keelctl cas greeting hi bye
  $BIN/keelctl status
  $BIN/keelctl bench --clients 16 --seconds 5 --op put --value-bytes 100
Stop it with: make stop
USAGE
}

stop() {
	stopped=0
	for i in $(seq 1 $N); do
		f="$RUN/node$i.pid"
		if is_ours "$f"; then
			pid=$(cat "$f")
			kill -TERM "$pid"
			t=0
			while kill -0 "$pid" 2>/dev/null && [ "$t" -lt 100 ]; do
				sleep 0.1
				t=$((t + 1))
			done
			kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
			stopped=$((stopped + 1))
		fi
		rm -f "$f"
	done
	echo "keel: stopped $stopped node(s); data kept in $RUN/"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: sh ci/cluster.sh start|stop" >&2; exit 2 ;;
esac
