"""The store: the interface the filesystem sees (``interface``) and its two COS API clients.

``interface`` declares the verbs (list, stat, create, delete, move, copy, put, multipart,
read a range, set metadata) and the values they return. ``xml_store`` and ``json_store``
implement them over the XML API and the legacy JSON API, each with its own wire codec
(``xml_codec``, ``json_codec``); ``endpoints`` names the URLs. Layers above import only
``interface``: which API is in use is decided once, by the command layer
(``cosfs.command.store_factory``). This file imports nothing, so loading one module of
the package never loads the others.
"""
