#!/usr/bin/env bash
# Scale-out on a real batch engine: installs Debian's slurm-wlm + munge as a one-node cluster on this machine, runs
# embed / select / curate as Slurm job arrays of 4 partitions (--shard i/4 = $SLURM_ARRAY_TASK_ID/4), merges the
# partition outputs, runs the same work in one process, and compares hashes. Needs root (apt, daemons). Not part of CI.
#
#   scripts/slurm-demo.sh [PAIRS_FILE] [WORK_DIR]      (defaults: tests/fixtures/pairs/pairs.tsv, /tmp/mlnet-align-slurm)
#
# See docs/scale-out.md for the same work as a Kubernetes Indexed Job.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PAIRS="$(realpath "${1:-$ROOT/tests/fixtures/pairs/pairs.tsv}")"
WORK="${2:-/tmp/mlnet-align-slurm}"
N=4
CLI="$ROOT/src/MLNet.Align.Cli/bin/Release/net10.0/linux-x64/mlnet-align"
[ -x "$CLI" ] || dotnet build "$ROOT/src/MLNet.Align.Cli" -c Release
rm -rf "$WORK"; mkdir -p "$WORK/logs"

echo "== 1. one-node Slurm cluster (slurm-wlm + munge from Debian)"
if ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
fi
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge; dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge; chown munge:munge /run/munge /var/log/munge /var/lib/munge
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
HOST="$(hostname -s)"; CPUS="$(nproc)"; MEM="$(free -m | awk '/^Mem:/{print int($2*0.8)}')"
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=mlnetalign
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=demo Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
EOF
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 30); do sinfo -h -o %T 2>/dev/null | grep -qE "idle|mixed|alloc" && break; sleep 1; done
scontrol update nodename="$HOST" state=resume 2>/dev/null || true
sinfo

# The array task body: one partition of one stage. Environment: STAGE, and the variables below.
cat > "$WORK/task.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
i=\$SLURM_ARRAY_TASK_ID
case "\$STAGE" in
  embed)  "$CLI" embed --pairs "$PAIRS" --out "$WORK/embed/part-\$i" --shard "\$i/$N" --batch-size 8 ;;
  select) "$CLI" select --pairs "$PAIRS" --out "$WORK/select/parts" --shard "\$i/$N" ;;
  curate) "$CLI" curate --pool "$WORK/embed/merged" --concepts imagenet-1k --per-concept 8 --cap 2 --threads 1 \
            --shard "\$i/$N" --out "$WORK/curate/parts/part-\$i.bin" ;;
esac
EOF
chmod +x "$WORK/task.sh"
submit() { # STAGE: one job array of N tasks; --wait returns when all are done (non-zero if one failed)
  echo "== sbatch --array=0-$((N-1)) ($1)"
  STAGE="$1" sbatch --wait --array=0-$((N-1)) --cpus-per-task=1 --job-name="mlnet-$1" --export=ALL \
    --output="$WORK/logs/$1-%a.out" "$WORK/task.sh"
  grep -h -E "^(Store|Rows|Features|Candidates|Scored)" "$WORK/logs/$1-"*.out || true
}

echo "== 2. sharded run on Slurm"
submit embed
"$CLI" embed merge --out "$WORK/embed/merged" "$WORK"/embed/part-*
submit select
"$CLI" select merge --out "$WORK/select/merged" "$WORK"/select/parts/features-*-of-$N.bin | tail -n 2
submit curate
"$CLI" curate merge --cap 2 --out "$WORK/curate/merged/subset.tsv" "$WORK"/curate/parts/part-*.bin

echo "== 3. the same work in one process"
"$CLI" embed --pairs "$PAIRS" --out "$WORK/embed/whole" --batch-size 8 | tail -n 1
"$CLI" select --pairs "$PAIRS" --out "$WORK/select/whole" | tail -n 1
"$CLI" curate --pool "$WORK/embed/merged" --concepts imagenet-1k --per-concept 8 --cap 2 --out "$WORK/curate/whole/subset.tsv" | tail -n 2

echo "== 4. hashes (sharded + merged vs one process)"
status=0
compare() { # LABEL HASH_A HASH_B
  if [ "$2" = "$3" ]; then echo "MATCH     $1  $2"; else echo "DIFFERENT $1  sharded $2 vs one-process $3"; status=1; fi
}
compare "embed store content (digest)" "$("$CLI" digest "$WORK/embed/merged" | cut -d' ' -f1)" "$("$CLI" digest "$WORK/embed/whole" | cut -d' ' -f1)"
for f in selection.json selection.md; do
  compare "select $f" "$(sha256sum < "$WORK/select/merged/$f" | cut -d' ' -f1)" "$(sha256sum < "$WORK/select/whole/$f" | cut -d' ' -f1)"
done
for f in subset.tsv subset.report.json; do
  compare "curate $f" "$(sha256sum < "$WORK/curate/merged/$f" | cut -d' ' -f1)" "$(sha256sum < "$WORK/curate/whole/$f" | cut -d' ' -f1)"
done
sacct -X -n -o JobID,JobName,State,Elapsed 2>/dev/null | tail -n 15 || squeue
exit $status
