"""Request signatures for the COS XML API (q-sign, AWS SigV4) and the legacy JSON API.

Pure functions with no I/O; they are shared by the clients and by cosfs-emulator's verifier.
"""
