"""Backup, restore and disaster recovery (DESIGN §8), modelled on restic and borg.

archive     the file format: one zstd-compressed tar stream, manifest first, every file hashed
sources     what each kind of backup holds (daily, full, history) and the store snapshot
repository  where archives live (local folder, S3 bucket), selection by date, retention
jobs        making a backup: collect, write, upload, prune
restore     plan and restore: verify into staging beside the target, then swap with renames
verify      check live data or an archive against a manifest
drill       the disaster-recovery drill in a scratch folder
maintenance the weekly maintenance steps
"""

KINDS = ("daily", "full", "history")
