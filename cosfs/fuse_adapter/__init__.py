"""The FUSE adapter: ``operations`` turns each kernel callback into a call on the filesystem
and its errors into errnos; ``binding`` is the only importer of mfusepy or fusepy.
"""
