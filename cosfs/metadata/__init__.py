"""Metadata: ``attrs`` (COS user metadata <-> POSIX attributes), ``cache`` (TTL stat and
listing caches) and ``paths`` (mount path <-> key). Pure logic and in-memory state: no I/O.
"""
