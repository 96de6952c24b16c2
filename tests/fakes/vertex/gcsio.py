"""GCS reads and writes of the fake (batch inputs and outputs, artifact checks) against the emulator it was given.

google-cloud-storage with `client_options={"api_endpoint": <emulator>}` and anonymous credentials,
imported on first use so that starting the fake stays fast. Also the TFRecord framing, read without
TensorFlow: each record is `uint64 length (LE) | uint32 masked crc32c(length) | data | uint32 masked
crc32c(data)`; both checksums are verified (google-crc32c comes with google-cloud-storage).
"""

from __future__ import annotations

import fnmatch
import struct
from typing import Any, Iterator

from .wire import ApiError


class Gcs:
    def __init__(self, endpoint: str | None) -> None:
        self.endpoint = endpoint
        self._client: Any = None

    def client(self) -> Any:
        if self.endpoint is None:
            raise ApiError(
                "FAILED_PRECONDITION",
                "fake-vertex was started without --storage-endpoint: it cannot read or write gs:// URIs.",
            )
        if self._client is None:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self._client = storage.Client(
                project="fake-vertex",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": self.endpoint},
            )
        return self._client

    def expand(self, uri: str) -> list[str]:
        """A gs:// URI, or a pattern with `*` wildcards as Vertex accepts for inputs, as a sorted list of objects."""
        bucket, name = split(uri)
        if "*" not in name:
            return [uri]
        prefix = name.split("*", 1)[0]
        names = sorted(
            b.name for b in self.client().list_blobs(bucket, prefix=prefix) if fnmatch.fnmatchcase(b.name, name)
        )
        return [f"gs://{bucket}/{n}" for n in names]

    def read(self, uri: str) -> bytes:
        from google.api_core import exceptions

        bucket, name = split(uri)
        try:
            return self.client().bucket(bucket).blob(name).download_as_bytes()
        except exceptions.NotFound:
            raise ApiError("NOT_FOUND", f"Input file {uri} does not exist or is not readable.") from None

    def exists(self, uri: str) -> bool:
        """Whether one object exists (a training package must, before a replica can install it)."""
        bucket, name = split(uri)
        return bool(name) and self.client().bucket(bucket).blob(name).exists()

    def write(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        bucket, name = split(uri)
        self.client().bucket(bucket).blob(name).upload_from_string(data, content_type=content_type)

    def names_under(self, uri: str) -> list[str]:
        """Object names directly or deeper under a gs:// folder, relative to it."""
        bucket, prefix = split(uri.rstrip("/") + "/")
        return [b.name[len(prefix) :] for b in self.client().list_blobs(bucket, prefix=prefix)]


def split(uri: str) -> tuple[str, str]:
    if not uri.startswith("gs://"):
        raise ApiError("INVALID_ARGUMENT", f"{uri!r} is not a Cloud Storage URI (gs://bucket/path).")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket:
        raise ApiError("INVALID_ARGUMENT", f"{uri!r} names no bucket.")
    return bucket, name


def _masked_crc(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecords(data: bytes, uri: str) -> Iterator[bytes]:
    """The records of one TFRecord file; INVALID_ARGUMENT naming the file when it is truncated or corrupt."""
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ApiError("INVALID_ARGUMENT", f"{uri}: truncated TFRecord header at byte {pos}.")
        (length,) = struct.unpack_from("<Q", data, pos)
        (length_crc,) = struct.unpack_from("<I", data, pos + 8)
        if _masked_crc(data[pos : pos + 8]) != length_crc:
            raise ApiError("INVALID_ARGUMENT", f"{uri}: corrupt TFRecord length at byte {pos}.")
        start, end = pos + 12, pos + 12 + length
        if end + 4 > len(data):
            raise ApiError("INVALID_ARGUMENT", f"{uri}: truncated TFRecord at byte {pos}.")
        record = data[start:end]
        (data_crc,) = struct.unpack_from("<I", data, end)
        if _masked_crc(record) != data_crc:
            raise ApiError("INVALID_ARGUMENT", f"{uri}: TFRecord data checksum mismatch at byte {pos}.")
        yield record
        pos = end + 4


def tfrecord_bytes(records: list[bytes]) -> bytes:
    """Frame records as a TFRecord file (for tests and tools that write batch inputs without TensorFlow)."""
    out = bytearray()
    for record in records:
        header = struct.pack("<Q", len(record))
        out += header + struct.pack("<I", _masked_crc(header)) + record + struct.pack("<I", _masked_crc(record))
    return bytes(out)
