"""Backup archives as files (DESIGN §8): their format and where they live. A floor below the store, so
the store can tell a lost history from a new installation by the archives that hold one.

archive     the file format: one zstd-compressed tar stream, manifest first, every file hashed
repository  where archives live (local folder, S3 bucket), selection by date, retention
"""

KINDS = ("daily", "full", "history")
