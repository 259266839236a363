# shellcheck shell=bash
# Shared settings and helpers for the joulebench Slurm dev cluster.
# Sourced by `up`, `down` and `check`; not meant to be run directly.
# shellcheck disable=SC2034  # the variables below are used by the sourcing scripts

# Nodes in the cluster: 1 (default: one slurmd on 127.0.0.1) or more (`--nodes N`:
# one slurmd per node, each in its own network and UTS namespace on a bridge).
# A multi-node cluster has its own state dir, cluster name and ports, so it can
# run beside the single-node one (and leaves /etc/slurm to it).
NODES="${JB_SLURM_NODES:-1}"
case "$NODES" in ''|*[!0-9]*|0) printf '[jb-slurm] ERROR: --nodes must be a whole number >= 1, got %s\n' "$NODES" >&2; exit 1 ;; esac
if [ "$NODES" -gt 8 ]; then printf '[jb-slurm] ERROR: --nodes above 8 is not supported\n' >&2; exit 1; fi
if [ "$NODES" -eq 1 ]; then
  JB_SLURM_STATE="${JB_SLURM_STATE:-/tmp/joulebench-slurm}"
else
  JB_SLURM_STATE="${JB_SLURM_STATE:-/tmp/joulebench-slurm-${NODES}n}"
fi
# Normalise: no trailing slash, absolute.
JB_SLURM_STATE="${JB_SLURM_STATE%/}"
case "$JB_SLURM_STATE" in
  /*) ;;
  *) JB_SLURM_STATE="$(pwd)/$JB_SLURM_STATE" ;;
esac
STATE="$JB_SLURM_STATE"

if [ "$NODES" -eq 1 ]; then
  CLUSTER="${JB_SLURM_CLUSTER:-jbdev}"
  CTLD_PORT="${JB_SLURM_CTLD_PORT:-6817}"
  DBD_PORT="${JB_SLURM_DBD_PORT:-6819}"
  DB_PORT="${JB_SLURM_DB_PORT:-3316}"
else
  CLUSTER="${JB_SLURM_CLUSTER:-jbdev${NODES}n}"
  CTLD_PORT="${JB_SLURM_CTLD_PORT:-6827}"
  DBD_PORT="${JB_SLURM_DBD_PORT:-6829}"
  DB_PORT="${JB_SLURM_DB_PORT:-3326}"
fi
ACCOUNT="${JB_SLURM_ACCOUNT:-joulebench}"
# Each slurmd of a multi-node cluster listens in its own namespace, so they share it.
SLURMD_PORT="${JB_SLURM_SLURMD_PORT:-6818}"
DB_PASS="jbdev-slurm"   # loopback-only dev database; not a secret

MARKER="$STATE/.joulebench-slurm-state"
ETC="$STATE/etc"
CONF="$ETC/slurm.conf"
RUN="$STATE/run"
LOG="$STATE/log"
SPOOL="$STATE/spool"
MUNGE_DIR="$STATE/munge"
MUNGE_SOCK="$MUNGE_DIR/munge.socket.2"
MUNGE_KEY="$MUNGE_DIR/munge.key"
MUNGE_PID="$MUNGE_DIR/munged.pid"
DB_DIR="$STATE/mariadb"
DB_DATA="$DB_DIR/data"
DB_SOCK="$DB_DIR/mariadb.sock"
DB_PID="$DB_DIR/mariadb.pid"
GPU_DIR="$STATE/fake-gpus"
CTLD_PID="$RUN/slurmctld.pid"
SLURMD_PID="$RUN/slurmd.pid"
DBD_PID="$RUN/slurmdbd.pid"

# Multi-node network: a bridge in the root namespace (the controller's address,
# $NET_PREFIX.1) and, per node jbnI, a network namespace "$CLUSTER-jbnI" holding
# one end of a veth pair (address $NET_PREFIX.(10+I)), the other end on the bridge.
# Nothing is routed or NATed: traffic stays on the bridge and in these namespaces.
NET_PREFIX="${JB_SLURM_NET_PREFIX:-10.213.${NODES}}"
BRIDGE="jb${NODES}n-br"
node_name() { printf 'jbn%s\n' "$1"; }            # node_name I
node_netns() { printf '%s-jbn%s\n' "$CLUSTER" "$1"; } # netns of node I
node_veth() { printf 'jb%sn-n%s\n' "$NODES" "$1"; }   # host side of node I's veth
node_addr() { printf '%s.%s\n' "$NET_PREFIX" "$((10 + $1))"; }
node_pidfile() { printf '%s/slurmd-%s.pid\n' "$RUN" "$(node_name "$1")"; }

# Header written into every config we generate; `up`/`down` only ever
# overwrite or delete files in /etc/slurm that carry it.
MANAGED_TAG="# managed-by: joulebench slurm/dev-cluster"

log() { printf '[jb-slurm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[jb-slurm] ERROR: %s\n' "$*" >&2; exit 1; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it starts munged, MariaDB and the Slurm daemons)"
}

# pid_alive PID: true if PID exists and is not a zombie.  In containers whose
# PID 1 does not reap, killed daemons linger as zombies (state Z): they hold
# no ports or files any more, so they count as gone.
pid_alive() {
  local pid="$1" stat rest state
  [ -n "$pid" ] || return 1
  case "$pid" in *[!0-9]*) return 1 ;; esac
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  # Field 3 follows the ")" that closes the command name.
  rest="${stat##*) }"
  state="${rest%% *}"
  [ "$state" != "Z" ] && [ "$state" != "X" ]
}

# pidfile_pid FILE [COMM...]: print the pid in FILE if that process is alive
# (and, when COMMs are given, its /proc/PID/comm is one of them, so a pid
# recycled by some other program is never taken for our daemon).
pidfile_pid() {
  local file="$1" pid c actual; shift
  [ -s "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file" 2>/dev/null)"
  pid_alive "$pid" || return 1
  if [ "$#" -gt 0 ]; then
    actual="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    for c in "$@"; do
      if [ "$actual" = "$c" ]; then printf '%s\n' "$pid"; return 0; fi
    done
    return 1
  fi
  printf '%s\n' "$pid"
}

# One `up`/`down` at a time per state dir.  The lock lives on fd 9: every
# daemon must be started with `9>&-`, or it inherits the fd and holds the
# lock for its whole life (munged, mariadbd and slurmdbd do not close it).
take_lock() {
  local lock="$STATE.lock"
  exec 9>>"$lock"
  flock -w 300 9 || die "another up/down holds $lock"
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.5 s until it succeeds.
wait_for() {
  local timeout="$1" what="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  while ! "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "timed out after ${timeout}s waiting for: $what"
      return 1
    fi
    sleep 0.5
  done
}

# Slurm client commands must talk to this cluster whatever SLURM_CONF says.
slurm_env() { SLURM_CONF="$CONF" "$@"; }

pid_gone() { ! pid_alive "$1"; }

# stop_pid PID NAME [TIMEOUT]: SIGTERM, wait, then SIGKILL; fail if it stays.
stop_pid() {
  local pid="$1" name="$2" timeout="${3:-30}"
  pid_alive "$pid" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for "$timeout" "$name (pid $pid) to exit" pid_gone "$pid"; then
    log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for 10 "$name (pid $pid) to die" pid_gone "$pid" || return 1
  fi
}
