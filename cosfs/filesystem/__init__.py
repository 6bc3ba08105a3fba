"""The filesystem: what each POSIX operation means on COS, with no FUSE in sight.

``posix`` (path semantics), ``lookup`` (attributes and listings, with their request
costs), ``open_files`` (open files, staged writes, uploads at flush) and ``tree``
(directory renames). Unit-tested over an in-memory store.
"""
