"""cosfs-emulator: a local COS server (XML and JSON APIs) for tests, benchmarks and trying cosfs.

It imports nothing of the filesystem: only the signing code and the wire codecs it shares
with the clients, so that what it verifies is exactly what Tencent's SDK vectors pin down.
"""
