"""Backup, restore and disaster recovery (DESIGN §8), modelled on restic and borg; the archives
themselves (format, local folder, S3) are lib/archives, a floor below the store.

sources     what each kind of backup holds (daily, full, history) and the store snapshot
jobs        making a backup: collect, write, upload, prune
restore     plan and restore: verify into staging beside the target, then swap with renames
verify      check live data or an archive against a manifest
drill       the disaster-recovery drill in a scratch folder
maintenance the weekly maintenance steps
log_archive the agents' logs to S3
"""
