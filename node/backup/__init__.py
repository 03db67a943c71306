"""Backups of a node and their restore (``ccm-node backup create|restore``).

- ``journal.py``: the erasure journal, an append-only, hash-chained file beside the database
  (``<data_dir>/erasures.journal``) that survives a restore of the database, so erasures made after a backup
  are made again before the restored node serves (below the exchange: the erasure code writes it).
- ``archive.py``: one encrypted, signed backup file (database, ``keys/``, ``node.toml``, ``secret_key``, the
  journal, a manifest), and reading it back with every check before anything is written.
- ``restore.py``: restoring a verified archive into a data directory whose node is stopped, and re-applying
  the journal's newer erasures.
"""
