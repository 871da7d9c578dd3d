#!/usr/bin/env bash
# cassandra.sh — a throwaway single-node Apache Cassandra for Herald's tests,
# run straight from Maven Central's jars on OpenJDK 17 (no tarball, no
# package, no root).
#
#   scripts/cassandra.sh fetch            download the jars once into the cache
#   scripts/cassandra.sh start            fetch, start one node, wait until CQL answers
#   scripts/cassandra.sh stop             stop the node started by `start`
#   scripts/cassandra.sh status           say whether it runs, and where
#   scripts/cassandra.sh run -- CMD...    start (unless already running), run CMD
#                                         with HERALD_CASSANDRA_HOSTS set, stop
#                                         what it started, exit with CMD's status
#
# Settings (environment):
#   HERALD_CACHE                 cache root (default $HOME/.cache/herald)
#   HERALD_CASSANDRA_VERSION     cassandra-all version (default below)
#   HERALD_CASSANDRA_DIR         run folder: config, data, logs, pid file
#                                (default $HERALD_CACHE/cassandra-run-<port>)
#   HERALD_CASSANDRA_PORT        CQL port (default 9042); the node's storage
#                                port is this plus 10000 (19042 by default)
#   HERALD_CASSANDRA_HEAP        JVM heap (default 1G)
#   HERALD_CASSANDRA_START_TIMEOUT  seconds to wait for CQL (default 180)
#   JAVA17_HOME                  a Java 17 to use (else one is searched for)
#
# The node is for tests: fsync of system tables is off, there is no JMX
# (nodetool does not work), and its data is wiped by every `start`.
set -euo pipefail

CASSANDRA_VERSION="${HERALD_CASSANDRA_VERSION:-5.0.9}"
CACHE="${HERALD_CACHE:-$HOME/.cache/herald}"
CQL_PORT="${HERALD_CASSANDRA_PORT:-9042}"
HEAP="${HERALD_CASSANDRA_HEAP:-1G}"
START_TIMEOUT="${HERALD_CASSANDRA_START_TIMEOUT:-180}"
LIB_DIR="$CACHE/cassandra-$CASSANDRA_VERSION"
RUN_DIR="${HERALD_CASSANDRA_DIR:-$CACHE/cassandra-run-$CQL_PORT}"
PID_FILE="$RUN_DIR/cassandra.pid"

log() { printf 'cassandra.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

# find_java17 prints the home of a Java 17 runtime, or fails. Cassandra 5.0
# refuses Java 21 and later, and the machine may have several JDKs, so the
# default `java` is not trusted.
find_java17() {
	local c candidates=()
	[[ -n "${JAVA17_HOME:-}" ]] && candidates+=("$JAVA17_HOME")
	[[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME")
	for c in /usr/lib/jvm/*17* /usr/lib/jvm/*; do
		candidates+=("$c")
	done
	if command -v java >/dev/null 2>&1; then
		candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
	fi
	for c in "${candidates[@]}"; do
		[[ -x "$c/bin/java" ]] || continue
		if "$c/bin/java" -version 2>&1 | head -n 1 | grep -Eq 'version "17[."]'; then
			printf '%s\n' "$c"
			return 0
		fi
	done
	return 1
}

# why_unavailable prints why Cassandra cannot run here, or nothing.
why_unavailable() {
	if ! find_java17 >/dev/null; then
		echo "no Java 17 found (set JAVA17_HOME)"
	elif ! command -v mvn >/dev/null 2>&1 && [[ ! -f "$LIB_DIR/.complete" ]]; then
		echo "mvn is not installed and the jars are not cached in $LIB_DIR"
	fi
}

cmd_fetch() {
	if [[ -f "$LIB_DIR/.complete" ]]; then
		return 0
	fi
	command -v mvn >/dev/null 2>&1 || die "mvn is not installed"
	local java_home work
	java_home="$(find_java17)" || die "no Java 17 found (set JAVA17_HOME)"
	work="$(mktemp -d)"
	cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>herald.local</groupId>
  <artifactId>cassandra-jars</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$CASSANDRA_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
	log "fetching cassandra-all $CASSANDRA_VERSION and its runtime jars into $LIB_DIR"
	rm -rf "$LIB_DIR.partial"
	if ! (cd "$work" && JAVA_HOME="$java_home" mvn -B -q dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$LIB_DIR.partial"); then
		rm -rf "$work" "$LIB_DIR.partial"
		die "maven could not fetch cassandra-all $CASSANDRA_VERSION"
	fi
	rm -rf "$work" "$LIB_DIR"
	touch "$LIB_DIR.partial/.complete"
	mv "$LIB_DIR.partial" "$LIB_DIR"
	log "$(find "$LIB_DIR" -name '*.jar' | wc -l) jars in $LIB_DIR"
}

running_pid() {
	local pid
	[[ -f "$PID_FILE" ]] || return 1
	pid="$(cat "$PID_FILE")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
	printf '%s\n' "$pid"
}

port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

write_config() {
	local conf="$RUN_DIR/conf" data="$RUN_DIR/data" storage_port=$((CQL_PORT + 10000))
	mkdir -p "$conf" "$RUN_DIR/logs" "$data"
	cat >"$conf/cassandra.yaml" <<EOF
# Written by scripts/cassandra.sh: a single test node on 127.0.0.1.
cluster_name: herald-test
num_tokens: 1
allocate_tokens_for_local_replication_factor: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$storage_port"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $storage_port
ssl_storage_port: $((storage_port + 1))
start_native_transport: true
native_transport_port: $CQL_PORT
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB
data_file_directories:
  - $data/data
commitlog_directory: $data/commitlog
saved_caches_directory: $data/saved_caches
hints_directory: $data/hints
cdc_raw_directory: $data/cdc_raw
cdc_enabled: false
storage_compatibility_mode: NONE
auto_snapshot: false
snapshot_before_compaction: false
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
hinted_handoff_enabled: false
dynamic_snitch: false
concurrent_reads: 8
concurrent_writes: 16
concurrent_counter_writes: 4
concurrent_compactors: 1
compaction_throughput: 0MiB/s
key_cache_size: 16MiB
prepared_statements_cache_size: 16MiB
# Herald's projector writes one partition per unlogged batch; a batch of a
# few hundred small rows is normal for it, so warn late and never refuse.
batch_size_warn_threshold: 256KiB
batch_size_fail_threshold: 4MiB
unlogged_batch_across_partitions_warn_threshold: 100
read_request_timeout: 10000ms
write_request_timeout: 10000ms
range_request_timeout: 20000ms
request_timeout: 20000ms
EOF
	cat >"$conf/logback.xml" <<EOF
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$RUN_DIR/logs/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
  <logger name="com.datastax" level="WARN"/>
</configuration>
EOF
}

# jvm_flags prints the JVM options, one a line: those Cassandra 5.0's own
# jvm-server.options and jvm17-server.options pass, the test speed-ups, and
# the paths of this run.
jvm_flags() {
	local java_home="$1" jamm
	jamm="$(find "$LIB_DIR" -maxdepth 1 -name 'jamm-*.jar' | sort | tail -n 1)"
	[[ -n "$jamm" ]] || die "no jamm jar in $LIB_DIR"
	cat <<EOF
-Xms$HEAP
-Xmx$HEAP
-javaagent:$jamm
-ea
-da:net.openhft...
-XX:+UseThreadPriorities
-XX:+HeapDumpOnOutOfMemoryError
-XX:+ExitOnOutOfMemoryError
-XX:HeapDumpPath=$RUN_DIR/logs
-Xss256k
-XX:+UseTLAB
-XX:+ResizeTLAB
-XX:+PerfDisableSharedMem
-XX:+UseG1GC
-XX:+ParallelRefProcEnabled
-XX:MaxTenuringThreshold=1
-XX:G1HeapRegionSize=16m
-XX:MaxGCPauseMillis=300
-XX:ActiveProcessorCount=2
-Djava.net.preferIPv4Stack=true
-Dchronicle.analytics.disable=true
-Djdk.attach.allowAttachSelf=true
--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED
--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
--add-exports=java.management/com.sun.jmx.remote.security=ALL-UNNAMED
--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED
--add-exports=java.sql/java.sql=ALL-UNNAMED
--add-exports=java.base/java.lang.ref=ALL-UNNAMED
--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED
--add-opens=java.base/java.lang.module=ALL-UNNAMED
--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED
--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED
--add-opens=java.base/jdk.internal.math=ALL-UNNAMED
--add-opens=java.base/jdk.internal.module=ALL-UNNAMED
--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED
--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED
--add-opens=java.base/sun.nio.ch=ALL-UNNAMED
--add-opens=java.base/java.io=ALL-UNNAMED
--add-opens=java.base/java.lang.reflect=ALL-UNNAMED
--add-opens=java.base/java.lang=ALL-UNNAMED
--add-opens=java.base/java.util=ALL-UNNAMED
--add-opens=java.base/java.nio=ALL-UNNAMED
-Dio.netty.tryReflectionSetAccessible=true
-Dio.netty.allocator.useCacheForAllThreads=true
-Dio.netty.allocator.maxOrder=11
-Dcassandra.config=file://$RUN_DIR/conf/cassandra.yaml
-Dcassandra.storagedir=$RUN_DIR/data
-Dcassandra.logdir=$RUN_DIR/logs
-Dlogback.configurationFile=$RUN_DIR/conf/logback.xml
-Dcassandra-foreground=yes
-Dcassandra.skip_wait_for_gossip_to_settle=0
-Dcassandra.unsafesystem=true
-Dcassandra.ring_delay_ms=1000
-Djava.io.tmpdir=$RUN_DIR/tmp
EOF
	if [[ -x "$java_home/bin/javac" ]]; then
		cat <<EOF
--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED
--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
EOF
	fi
}

# cql_query_version speaks the CQL v4 binary protocol over bash's /dev/tcp:
# OPTIONS (any node answers SUPPORTED once the native transport is up),
# STARTUP, then SELECT release_version FROM system.local. It prints the
# version and fails unless every step got the expected answer.
cql_query_version() {
	local port="$1" op body
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	# header: version 4, flags 0, stream, opcode, body length
	printf '\x04\x00\x00\x01\x05\x00\x00\x00\x00' >&3
	cql_read_frame || { exec 3>&-; return 1; }
	[[ "$op" == 6 ]] || { exec 3>&-; return 1; } # SUPPORTED
	# STARTUP {CQL_VERSION: 3.0.0}
	printf '\x04\x00\x00\x02\x01\x00\x00\x00\x16\x00\x01\x00\x0bCQL_VERSION\x00\x053.0.0' >&3
	cql_read_frame || { exec 3>&-; return 1; }
	[[ "$op" == 2 ]] || { exec 3>&-; return 1; } # READY
	# QUERY, consistency ONE, no flags
	printf '\x04\x00\x00\x03\x07\x00\x00\x00\x2f\x00\x00\x00\x28SELECT release_version FROM system.local\x00\x01\x00' >&3
	cql_read_frame || { exec 3>&-; return 1; }
	exec 3>&-
	[[ "$op" == 8 ]] || return 1 # RESULT
	printf '%b' "$(sed 's/../\\x&/g' <<<"$body")" | tr -c '[:print:]' '\n' | grep -E '^[0-9]+\.[0-9]+' | tail -n 1
}

# cql_read_frame reads one response frame from fd 3 into op (decimal
# opcode) and body (hex), giving up after a few seconds.
cql_read_frame() {
	local hdr len
	hdr="$(timeout 10 dd bs=1 count=9 <&3 2>/dev/null | od -An -v -tu1)" || return 1
	# shellcheck disable=SC2086
	set -- $hdr
	[[ $# == 9 ]] || return 1
	op="$5"
	len=$((($6 << 24) | ($7 << 16) | ($8 << 8) | $9))
	body=""
	if ((len > 0)); then
		body="$(timeout 10 dd bs=1 count="$len" <&3 2>/dev/null | od -An -v -tx1 | tr -d ' \n')" || return 1
	fi
}

cmd_start() {
	local pid java_home version deadline
	if pid="$(running_pid)"; then
		log "already running (pid $pid, CQL 127.0.0.1:$CQL_PORT)"
		return 0
	fi
	if port_in_use "$CQL_PORT" || port_in_use $((CQL_PORT + 10000)); then
		die "port $CQL_PORT or $((CQL_PORT + 10000)) is taken by another process; set HERALD_CASSANDRA_PORT"
	fi
	java_home="$(find_java17)" || die "no Java 17 found (set JAVA17_HOME)"
	cmd_fetch
	rm -rf "$RUN_DIR/data" "$RUN_DIR/logs" "$RUN_DIR/tmp"
	mkdir -p "$RUN_DIR/tmp"
	write_config
	local -a flags
	mapfile -t flags < <(jvm_flags "$java_home")
	log "starting Cassandra $CASSANDRA_VERSION on 127.0.0.1:$CQL_PORT (Java $java_home, run folder $RUN_DIR)"
	# setsid: the node outlives the shell (and make) that started it, and a
	# Ctrl-C aimed at a test run does not reach it.
	setsid nohup "$java_home/bin/java" "${flags[@]}" \
		-cp "$RUN_DIR/conf:$LIB_DIR/*" org.apache.cassandra.service.CassandraDaemon \
		>"$RUN_DIR/logs/stdout.log" 2>&1 </dev/null &
	echo $! >"$PID_FILE"
	pid=$!
	deadline=$((SECONDS + START_TIMEOUT))
	while ((SECONDS < deadline)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "Cassandra exited during start-up; last lines of its logs:"
			tail -n 40 "$RUN_DIR/logs/system.log" "$RUN_DIR/logs/stdout.log" >&2 2>/dev/null || true
			rm -f "$PID_FILE"
			exit 1
		fi
		if port_in_use "$CQL_PORT" && version="$(cql_query_version "$CQL_PORT")" && [[ -n "$version" ]]; then
			echo "Cassandra $version is up on 127.0.0.1:$CQL_PORT after ${SECONDS}s (pid $pid; stop it with: $0 stop)"
			return 0
		fi
		sleep 1
	done
	log "Cassandra did not answer CQL on 127.0.0.1:$CQL_PORT within ${START_TIMEOUT}s; last lines of its log:"
	tail -n 40 "$RUN_DIR/logs/system.log" >&2 2>/dev/null || true
	cmd_stop
	exit 1
}

cmd_stop() {
	local pid i
	if ! pid="$(running_pid)"; then
		rm -f "$PID_FILE"
		log "not running"
		return 0
	fi
	kill "$pid" 2>/dev/null || true
	for ((i = 0; i < 60; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid did not stop within 30s; killing it"
		kill -9 "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
	fi
	rm -f "$PID_FILE"
	log "stopped (pid $pid)"
}

cmd_status() {
	local pid
	if pid="$(running_pid)"; then
		echo "running: pid $pid, CQL 127.0.0.1:$CQL_PORT, run folder $RUN_DIR"
	else
		echo "not running"
		return 1
	fi
}

cmd_run() {
	[[ "${1:-}" == "--" ]] && shift
	(($# > 0)) || die "run: no command given (usage: $0 run -- CMD...)"
	local why status=0
	why="$(why_unavailable)"
	if [[ -n "$why" ]]; then
		echo "Cassandra tests skipped: $why"
		"$@" || status=$?
		return "$status"
	fi
	if running_pid >/dev/null; then
		# Someone's `make cassandra` is up: use it and leave it running.
		echo "Using the running Cassandra $(cql_query_version "$CQL_PORT" || echo '(version unknown)') on 127.0.0.1:$CQL_PORT"
	else
		trap 'cmd_stop' EXIT
		trap 'exit 130' INT TERM
		cmd_start
	fi
	HERALD_CASSANDRA_HOSTS="127.0.0.1:$CQL_PORT" "$@" || status=$?
	return "$status"
}

main() {
	local sub="${1:-}"
	(($# > 0)) && shift
	case "$sub" in
	fetch) cmd_fetch ;;
	start) cmd_start ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	run) cmd_run "$@" ;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
