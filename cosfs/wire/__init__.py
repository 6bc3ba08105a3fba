"""The wire: ``transport`` (HTTP, timeouts, retries with ``retry``), ``signing`` (q-sign,
SigV4, the JSON API signature), ``credentials``, ``errors`` (the one errno table) and
``facts`` (documented COS limits both cosfs and cosfs-emulator rely on). This file imports
nothing, so the emulator can use ``signing`` and ``facts`` without loading HTTP code.
"""
