#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for tests/test_slurm.py (and for trying
# profiles/slurm by hand). Debian/Ubuntu packages only: slurmctld, slurmd, slurm-client,
# slurmdbd + mariadb-server (so that `sacct` works, which the executor plugin polls), munge.
#
#   tests/slurm/cluster.sh start    install if needed (root + apt), write the configs, start
#                                   munged, mariadbd, slurmdbd, slurmctld, slurmd; wait until
#                                   the node is idle. A no-op if our cluster already runs.
#   tests/slurm/cluster.sh stop     cancel all jobs, stop the daemons by the PIDs in the state
#                                   dir, remove the configs this script wrote under /etc/slurm.
#   tests/slurm/cluster.sh status   sinfo + the recorded PIDs
#   tests/slurm/cluster.sh env      KEY=VALUE lines (partition, account, node memory, ...)
#
# The node: the machine's real CPU layout (`slurmd -C`), RealMemory = 75 % of the memory
# available now, and two fake GPUs (Gres=gpu:2 backed by /dev/null and /dev/zero), so rules with
# `resources: gpu=1` are submitted with `--gpus=1` exactly as on a GPU cluster, and two of them
# (one per CPU) run at once, as on a cluster.
# No cgroups here (containers): proctrack/linuxproc, task/none.
#
# Settings (environment): HEADPLAST_SLURM_STATE (state dir, default /tmp/headplast-slurm),
# HEADPLAST_SLURM_PARTITION (default "debug"), HEADPLAST_SLURM_DBPORT (default 33061).
set -euo pipefail

STATE=${HEADPLAST_SLURM_STATE:-/tmp/headplast-slurm}
PARTITION=${HEADPLAST_SLURM_PARTITION:-debug}
DBPORT=${HEADPLAST_SLURM_DBPORT:-33061}
CLUSTER=headplast
ACCOUNT=headplast
ETC=/etc/slurm                       # fixed: the plugin's job step drops SLURM_CONF
MARK="# written by headplast tests/slurm/cluster.sh"
PKGS=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)
BINS=(slurmctld slurmd slurmdbd sbatch sacct sacctmgr munged mariadbd mariadb-install-db)
RUN=$STATE/run                       # pid files
LOG=$STATE/log

log() { echo "[cluster.sh] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------------- install
install_pkgs() {
    local missing=0 b
    for b in "${BINS[@]}"; do
        command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b ]] || missing=1
    done
    [[ $missing == 0 ]] && return 0
    [[ $(id -u) == 0 ]] || die "SLURM packages missing and not root: cannot apt-get install"
    command -v apt-get >/dev/null || die "SLURM packages missing and no apt-get"
    log "installing ${PKGS[*]} (apt-get)"
    # Keep the packages' init scripts from starting system daemons (they would take the
    # ports and the munge socket): a temporary policy-rc.d unless one is already there.
    local policy=/usr/sbin/policy-rc.d ours=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; ours=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${PKGS[@]}"; } \
        >"${TMPDIR:-/tmp}/headplast-slurm-apt.log" 2>&1 \
        || { [[ $ours == 1 ]] && rm -f "$policy"
             tail -30 "${TMPDIR:-/tmp}/headplast-slurm-apt.log" >&2; die "apt-get failed"; }
    [[ $ours == 1 ]] && rm -f "$policy"
    return 0
}

# ---------------------------------------------------------------------------------- helpers
pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local t=$1 what=$2; shift 2
    local end=$((SECONDS + t))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || { log "timeout waiting for $what"; tail_logs; die "$what"; }
        sleep 0.2
    done
}

tail_logs() {
    local f
    for f in "$LOG"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -15 "$f" >&2; }; done
}

write_etc() {  # write_etc NAME MODE: stdin -> /etc/slurm/NAME, refusing to clobber a real one
    local f=$ETC/$1
    if [[ -e $f ]] && ! grep -qF "$MARK" "$f"; then
        die "$f exists and was not written by this script (a real SLURM config?); not touching it"
    fi
    { echo "$MARK"; cat; } >"$f"
    chmod "$2" "$f"
}

# ---------------------------------------------------------------------------------- start
start() {
    if pid_alive "$RUN/slurmd.pid" && pid_alive "$RUN/slurmctld.pid"; then
        log "already running (state $STATE)"; return 0
    fi
    [[ $(id -u) == 0 ]] || die "must run as root (daemons, /etc/slurm)"
    local t0=$SECONDS
    install_pkgs
    # leftovers of an earlier, half-stopped run
    [[ -d $RUN ]] && stop_daemons
    rm -rf "$STATE"
    mkdir -p "$RUN" "$LOG" "$STATE/ctld" "$STATE/d" "$STATE/munge" "$ETC"
    chmod 755 "$STATE" "$RUN" "$LOG"

    local host mem_avail mem node_hw dbpass
    host=$(hostname -s)
    # RealMemory below what is free now, or slurmd registers the node as invalid
    mem_avail=$(awk '/MemAvailable/ {print int($2/1024)}' /proc/meminfo)
    mem=$((mem_avail * 3 / 4))
    # the real CPU layout (CPUs, sockets, cores, threads) as slurmd sees it
    node_hw=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ *RealMemory=[0-9]*//')
    dbpass=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

    # -- munge (the key comes with the package; make one if it does not)
    [[ -s /etc/munge/munge.key ]] || mungekey -c -f -k /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key
    mkdir -p /run/munge; chown munge:munge /run/munge "$STATE/munge"; chmod 755 /run/munge
    runuser -u munge -- munged --pid-file="$STATE/munge/munged.pid" \
        --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed"
    wait_for 10 munged test -s "$STATE/munge/munged.pid"
    ln -sf "$STATE/munge/munged.pid" "$RUN/munged.pid"
    ln -sf "$STATE/munge/munged.log" "$LOG/munged.log"

    # -- mariadb, private datadir, TCP on 127.0.0.1 only (slurmdbd has no socket option)
    local my=$STATE/mariadb   # owned by mysql: data, socket, pid file, log
    mkdir -p "$my/data"; chown -R mysql:mysql "$my"
    mariadb-install-db --user=mysql --datadir="$my/data" --skip-test-db \
        --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1 \
        || { cat "$LOG/mariadb-install.log" >&2; die "mariadb-install-db"; }
    setsid mariadbd --no-defaults --user=mysql --datadir="$my/data" \
        --socket="$my/mysqld.sock" --pid-file="$my/mariadbd.pid" \
        --port="$DBPORT" --bind-address=127.0.0.1 --skip-name-resolve --skip-log-bin \
        --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 \
        --log-error="$my/mariadb.log" </dev/null >"$LOG/mariadbd.out" 2>&1 &
    ln -sf "$my/mariadbd.pid" "$RUN/mariadbd.pid"
    ln -sf "$my/mariadb.log" "$LOG/mariadb.log"
    wait_for 60 mariadbd mariadb-admin --socket="$my/mysqld.sock" ping
    mariadb --socket="$my/mysqld.sock" -uroot <<SQL
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$dbpass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL

    # -- configs
    write_etc slurmdbd.conf 600 <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DBPORT
StorageUser=slurm
StoragePass=$dbpass
StorageLoc=slurm_acct_db
EOF
    write_etc slurm.conf 644 <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
# no cgroups in containers
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
# keep finished jobs visible to squeue for a while too (sacct is the plugin's default)
MinJobAge=600
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
NodeName=$host NodeAddr=127.0.0.1 $node_hw RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    # a CPU-only test node "has" two GPUs: /dev/null and /dev/zero stand in for /dev/nvidia0,1
    write_etc gres.conf 644 <<EOF
NodeName=$host Name=gpu File=/dev/null
NodeName=$host Name=gpu File=/dev/zero
EOF

    # -- slurmdbd, then the cluster/account/user rows, then slurmctld and slurmd
    slurmdbd
    wait_for 30 slurmdbd sacctmgr -n list cluster
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
    sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=tests Organization=tests >/dev/null
    sacctmgr -i add user "$(id -un)" Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null
    slurmctld
    wait_for 30 slurmctld scontrol ping
    slurmd -N "$host"
    wait_for 60 "node $host idle" node_idle
    {
        echo "HEADPLAST_SLURM_PARTITION=$PARTITION"
        echo "HEADPLAST_SLURM_ACCOUNT=$ACCOUNT"
        echo "HEADPLAST_SLURM_CLUSTER=$CLUSTER"
        echo "HEADPLAST_SLURM_NODE=$host"
        echo "HEADPLAST_SLURM_MEM_MB=$mem"
        echo "HEADPLAST_SLURM_CPUS=$(sinfo -h -N -o %c | head -1)"
    } >"$STATE/env"
    log "up in $((SECONDS - t0)) s: node $host, partition $PARTITION, $(sinfo -h -N -o '%c CPUs, %m MB, %G')"
}

node_idle() { [[ $(sinfo -h -N -o %T 2>/dev/null | head -1) == idle ]]; }

# ---------------------------------------------------------------------------------- stop
stop_daemons() {
    local name f pid i
    for name in slurmd slurmctld slurmdbd mariadbd munged; do
        local t=$SECONDS
        f=$RUN/$name.pid
        [[ -s $f ]] || continue
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$pid" 2>/dev/null; then
                log "$name ($pid) ignored TERM, killing"; kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        rm -f "$f"
        ((SECONDS - t < 3)) || log "$name took $((SECONDS - t)) s to stop"
    done
}

stop() {
    [[ -d $RUN ]] || { log "not running (no $RUN)"; remove_etc; return 0; }
    if pid_alive "$RUN/slurmctld.pid"; then
        # jobs die with their slurmstepd; give them a moment to be accounted
        scancel --quiet -u "$(id -un)" 2>/dev/null || true
        for _ in $(seq 1 50); do [[ -z $(squeue -h -t R,CG -o %i 2>/dev/null) ]] && break; sleep 0.2; done
    fi
    stop_daemons
    remove_etc
    log "stopped (logs kept in $LOG)"
}

remove_etc() {  # only what this script wrote: the next `scontrol` must fail fast, not hang
    local f
    for f in slurm.conf slurmdbd.conf gres.conf; do
        [[ -f $ETC/$f ]] && grep -qF "$MARK" "$ETC/$f" && rm -f "$ETC/$f"
    done
    return 0
}

status() {
    local f
    for f in "$RUN"/*.pid; do
        [[ -e $f ]] || continue
        if pid_alive "$f"; then echo "$(basename "$f" .pid) $(cat "$f") running"
        else echo "$(basename "$f" .pid) dead"; fi
    done
    sinfo -N -o '%N %P %T %c %m %G' 2>/dev/null || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) cat "$STATE/env" ;;
    install) install_pkgs ;;
    *) echo "usage: $0 start|stop|status|env|install" >&2; exit 2 ;;
esac
