"""cosfs: mount a Tencent Cloud COS bucket as a directory."""

__version__ = "0.1.0"
