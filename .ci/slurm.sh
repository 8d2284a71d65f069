#!/usr/bin/env bash
# Start or stop a throw-away single-node SLURM cluster on 127.0.0.1 for the SLURM tests, with
# accounting (slurmdbd on a throw-away MariaDB), so that `sacct` -- which submitit reads a job's
# state from -- knows every job. Needs root (the daemons run as root; so do the jobs).
#   source .ci/slurm.sh start   # exports SLURM_CONF and COLORIZE_TEST_SLURM=1
#   .ci/slurm.sh stop
# Everything lives under $COLORIZE_SLURM_DIR (default /tmp/colorize-slurm); nothing in /etc is
# written, and the cluster is reached through SLURM_CONF alone.
set -euo pipefail
SDIR=${COLORIZE_SLURM_DIR:-/tmp/colorize-slurm}
DBPORT=${COLORIZE_SLURM_DBPORT:-53306}
PACKAGES="munge mariadb-server slurmctld slurmd slurmdbd slurm-client"

slurm_install() {  # the Debian packages, if any is missing (the daemons are started by hand below)
  local missing=0 cmd
  for cmd in munged mariadbd slurmctld slurmd slurmdbd sbatch; do
    command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || missing=1
  done
  [ "$missing" = 0 ] && return
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $PACKAGES >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $PACKAGES >/dev/null; }
}

slurm_config() {  # slurm.conf: one node with this machine's cores and memory, jobs share it by cores
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))  # MiB, less 1 GiB for the OS
  cat > "$SDIR/etc/slurm.conf" <<EOF
ClusterName=colorize
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobCompType=jobcomp/none
StateSaveLocation=$SDIR/state
SlurmdSpoolDir=$SDIR/spool
SlurmctldPidFile=$SDIR/run/slurmctld.pid
SlurmdPidFile=$SDIR/run/slurmd.pid
SlurmctldLogFile=$SDIR/log/slurmctld.log
SlurmdLogFile=$SDIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ReturnToService=2
KillWait=10
MinJobAge=30
SchedulerType=sched/backfill
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat > "$SDIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$SDIR/run/slurmdbd.pid
LogFile=$SDIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DBPORT
StorageUser=slurm
StoragePass=colorize
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$SDIR/etc/slurmdbd.conf"
  : > "$SDIR/etc/cgroup.conf"
}

start_munge() {  # on the default socket, which every SLURM command looks for; a live munged is kept
  [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null >/dev/null 2>&1 && return
  mkdir -p /run/munge
  dd if=/dev/urandom of="$SDIR/munge/munge.key" bs=1 count=1024 status=none
  chmod 400 "$SDIR/munge/munge.key"
  /usr/sbin/munged --force --key-file="$SDIR/munge/munge.key" --pid-file="$SDIR/munge/munged.pid" \
    --log-file="$SDIR/log/munged.log" --seed-file="$SDIR/munge/seed"
}

start_mariadb() {  # a throw-away MariaDB on 127.0.0.1:$DBPORT holding slurmdbd's tables
  local db="$SDIR/mysql"
  mariadb-install-db --no-defaults --datadir="$db/data" --user=root --auth-root-authentication-method=normal \
    --skip-test-db >"$SDIR/log/mariadb-install.log" 2>&1
  mariadbd --no-defaults --datadir="$db/data" --user=root --bind-address=127.0.0.1 --port="$DBPORT" \
    --socket="$db/mysqld.sock" --pid-file="$db/mysqld.pid" --log-error="$SDIR/log/mariadb.log" \
    --innodb-buffer-pool-size=64M >/dev/null 2>&1 &
  wait_for "MariaDB" 60 mariadb --no-defaults --socket="$db/mysqld.sock" -uroot -e "SELECT 1"
  mariadb --no-defaults --socket="$db/mysqld.sock" -uroot -e "
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'colorize';
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'colorize';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

wait_for() {  # wait_for WHAT SECONDS COMMAND...: until the command succeeds, or fail with the logs
  local what=$1 secs=$2; shift 2
  for _ in $(seq $(( secs * 2 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "slurm.sh: $what did not come up in $secs s; logs in $SDIR/log:" >&2
  tail -n 20 "$SDIR"/log/*.log >&2 || true
  return 1
}

node_idle() { [ "$(timeout 5 sinfo -h -N -o %t 2>/dev/null)" = idle ]; }

slurm_stop() {
  local f
  for f in slurmd slurmctld slurmdbd; do
    [ -s "$SDIR/run/$f.pid" ] && kill "$(cat "$SDIR/run/$f.pid")" 2>/dev/null || true
  done
  sleep 1
  pkill -f "^/usr/sbin/slurm(d|ctld|dbd) .*-f $SDIR/" 2>/dev/null || true
  [ -s "$SDIR/mysql/mysqld.pid" ] && kill "$(cat "$SDIR/mysql/mysqld.pid")" 2>/dev/null || true
  [ -s "$SDIR/munge/munged.pid" ] && kill "$(cat "$SDIR/munge/munged.pid")" 2>/dev/null || true
  sleep 1
  rm -rf "$SDIR"
}

slurm_start() {
  [ "$(id -u)" = 0 ] || { echo "slurm.sh: run as root (the test cluster's daemons and jobs run as root)" >&2; return 1; }
  slurm_install
  slurm_stop
  mkdir -p "$SDIR"/{etc,state,spool,run,log,munge,mysql}
  export SLURM_CONF="$SDIR/etc/slurm.conf"
  slurm_config
  start_munge
  start_mariadb
  /usr/sbin/slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF; daemonizes
  wait_for "slurmdbd" 60 timeout 5 sacctmgr -n list cluster
  sacctmgr -i add cluster colorize >/dev/null
  /usr/sbin/slurmctld -f "$SLURM_CONF"
  /usr/sbin/slurmd -f "$SLURM_CONF" -N localhost
  wait_for "the node (sinfo idle)" 60 node_idle
  export COLORIZE_TEST_SLURM=1
  echo "SLURM on 127.0.0.1: $(sinfo -h -o '%P %D node(s), %c CPUs, %m MB, %t') (SLURM_CONF=$SLURM_CONF)"
}

case "${1:-}" in
  start) slurm_start ;;
  stop) slurm_stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
