"""Documented COS limits and names that both sides of the wire rely on.

cosfs (the client) sizes its requests by these, and cosfs-emulator (the server) refuses what
breaks them; neither side's parsing or encoding code is shared, only these numbers and
names, each quoted from the manual it comes from, so that a wrong assumption in one side's
code cannot be silently mirrored by the other.

Sources: ``003`` is the legacy JSON API manual (Chinese); ``cos-protocol.md`` quotes COS's
XML API documentation (doc 436/7749 and neighbours) and cos-python-sdk-v5.
"""

from __future__ import annotations

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# --- both APIs --------------------------------------------------------------------------

#: An object key is at most 850 bytes of UTF-8 (COS's object-key rules; a longer key is
#: ``400 KeyTooLong`` on the XML API, cos-protocol.md section 2, and -180 on the JSON API).
MAX_KEY_BYTES = 850
#: cos-protocol.md, "Limits": "User metadata <= 2 KB" (``x-cos-meta-*`` names and values).
MAX_META_BYTES = 2 * KiB
#: The prefix of a user metadata header, in both APIs (the JSON API's ``custom_headers``).
META_PREFIX = "x-cos-meta-"

# --- XML API (cos-protocol.md, "Limits") ------------------------------------------------

#: "Single PUT <= 5 GB" (SDK ``SINGLE_UPLOAD_LENGTH``); also the largest single copy.
MAX_PUT_SIZE = 5 * GiB
#: "parts numbered 1-10000".
MAX_PARTS = 10000
#: "part size 1 MB-5 GB; the last part may be <1 MB".
MIN_PART_SIZE = 1 * MiB
MAX_PART_SIZE = 5 * GiB
#: "List: <=1000 keys/parts per page. Multi-Delete: <=1000 keys."
MAX_LIST_KEYS = 1000

# --- JSON API (manual 003) --------------------------------------------------------------

#: 初始化分片上传 ``slice_size`` "有效值: 524288 (512 KB), 1048576 (1 MB), 2097152 (2 MB),
#: 3145728 (3 MB)".
SLICE_SIZES = (512 * KiB, 1 * MiB, 2 * MiB, 3 * MiB)
#: The SDKs' default slice (qcloud-cos-v4: 1 MB).
DEFAULT_SLICE_SIZE = 1 * MiB
#: "-165 ERROR_CMD_COS_MAX_NUM 单次拉取目录最大支持199": one list request returns at most 199
#: entries (the list section's "最大支持1000" is not what COS enforces).
JSON_MAX_LIST_KEYS = 199
#: "使用 API 上传 <= 20MB 的文件": the largest simple upload.
JSON_MAX_UPLOAD_SIZE = 20 * MiB
