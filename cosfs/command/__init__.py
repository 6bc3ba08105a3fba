"""The command: parse and check the command line, probe COS, daemonize, compose the layers.

``cli`` (``cosfs``), ``doctor`` (``cosfs doctor``), ``daemon`` (fork, readiness, systemd
notification), ``mount`` (the composition root: builds every layer below and runs FUSE),
``store_factory`` (the one place that picks an API client), ``options``, ``diagnose``
(one-line explanations of probe failures) and ``log``; ``status`` (``cosfs status``),
``status_socket``, ``snapshot`` and ``metrics``: what a running mount is doing. The only
layer that knows all the others.
"""
