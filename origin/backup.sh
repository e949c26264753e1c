#!/usr/bin/env bash
# A consistent backup of a live durable-streams data dir (origin --data-dir), taken while the
# origin keeps serving.
#
#   origin/backup.sh /var/lib/durable-streams /backups/ds-$(date +%F)
#
# 1. LMDB (DIR/meta) is copied first with mdb_copy: a consistent snapshot of every stream's
#    committed end and producer states.
# 2. Then the stream directories (DIR/streams). Segments only grow, so every byte the snapshot
#    counts as committed is in the copy; bytes appended after the snapshot are copied too, but lie
#    beyond the snapshot's committed ends, and a server started on the backup cuts them.
# The result is the data dir as it was at the moment of the snapshot. A stream deleted while the
# copy runs may be restored shortened (delete it again). Restore: start an origin with
# --data-dir pointing at the backup (or a copy of it).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 DATA_DIR DEST (DEST must not exist)" >&2
    exit 2
fi
SRC=$1
DEST=$2
[ -d "$SRC/meta" ] && [ -d "$SRC/streams" ] || { echo "backup: $SRC is not a durable-streams data dir" >&2; exit 1; }
[ ! -e "$DEST" ] || { echo "backup: $DEST already exists" >&2; exit 1; }
if ! command -v mdb_copy >/dev/null 2>&1; then
    echo "backup: mdb_copy not found; install Debian's lmdb-utils (apt-get install -y lmdb-utils)" >&2
    exit 1
fi

mkdir -p "$DEST/meta"
mdb_copy "$SRC/meta" "$DEST/meta"
cp -a "$SRC/streams" "$DEST/streams"
echo "backup: $SRC -> $DEST (LMDB snapshot, then $(du -sh "$DEST/streams" | cut -f1) of segments)"
