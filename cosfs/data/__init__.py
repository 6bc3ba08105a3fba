"""The data path: ``staging`` (bytes on local disk until stored), ``uploader`` (one PUT or a
multipart upload, never half an object) and ``reader`` (ranged reads with readahead).
"""
