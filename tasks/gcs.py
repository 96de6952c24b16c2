"""Cloud Storage for every cloud step: one client rule, verified parallel transfers, clean-up.

google-cloud-storage, never tf.io.gfile: gfile's gs:// endpoint is fixed, so it
cannot reach an emulator. Uploads run on google.cloud.storage.transfer_manager
threads (processes would re-import the SDK per worker and pickle the client);
every blob's crc32c is checked against the local file; blobs already holding
the same bytes (size + crc32c) are skipped; `saved_model.pb` goes up last, in a
second phase, so a reader that finds it finds a whole model.

SDK imports live inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

log = logging.getLogger(__name__)

MARKERS = ("saved_model.pb", "saved_model.pbtxt")  # what TF's loaders look for: written after everything else
POOL_SIZE = 10  # urllib3's default connections per host; more workers need a bigger pool
_CHUNK = 1 << 20


class IntegrityError(RuntimeError):
    """A blob's bytes differ from the local file (crc32c or size); the message names the blob."""


# --------------------------------------------------------------------------- URIs and clients
def split_uri(uri: str) -> tuple[str, str]:
    """ "gs://b/a/c/" -> ("b", "a/c"); ValueError naming the uri if it is not gs://BUCKET[/PATH]."""
    if not isinstance(uri, str) or not uri.startswith("gs://"):
        raise ValueError(f"{uri!r} is not a Cloud Storage URI (expected gs://BUCKET/PATH)")
    bucket, _, path = uri[len("gs://") :].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket (expected gs://BUCKET/PATH)")
    return bucket, path.strip("/")


def _folder(path: str) -> str:
    """The listing prefix of a folder: "a/c" -> "a/c/", "" (bucket root) -> ""."""
    return f"{path}/" if path else ""


def _endpoint(value: str | None) -> str | None:
    if not value:
        return None
    value = value.rstrip("/")
    return value if "://" in value else f"http://{value}"  # STORAGE_EMULATOR_HOST is often host:port


def storage_client(cloud: Any) -> Any:
    """A storage.Client for cfg.cloud: its storage_endpoint (else $STORAGE_EMULATOR_HOST) or Google's service.

    With an endpoint the credentials are anonymous unless cloud.credentials names a key file, so an
    emulator never triggers a credentials lookup (nor a metadata-server probe).
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from tfrun.tasks import cloud_auth

    project = getattr(cloud, "project", None) or None
    endpoint = _endpoint(getattr(cloud, "storage_endpoint", None) or os.environ.get("STORAGE_EMULATOR_HOST"))
    mode = getattr(cloud, "credentials", None) or "adc"
    if endpoint:
        creds = AnonymousCredentials() if mode in ("adc", "anonymous") else cloud_auth.credentials(cloud)
        return storage.Client(project=project, credentials=creds, client_options={"api_endpoint": endpoint})
    return storage.Client(project=project, credentials=cloud_auth.credentials(cloud))


def storage_client_from_env() -> Any:
    """A storage.Client inside a serving container or batch worker: $STORAGE_EMULATOR_HOST if set, else ADC."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from tfrun.tasks import cloud_auth

    endpoint = _endpoint(os.environ.get("STORAGE_EMULATOR_HOST"))
    if endpoint:
        return storage.Client(
            project=os.environ.get("GOOGLE_CLOUD_PROJECT") or None,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
        )
    creds, project = cloud_auth.adc()
    return storage.Client(project=project, credentials=creds)


def _widen_pool(client: Any, workers: int) -> None:
    """Give the client's HTTP session one connection per worker (urllib3 keeps 10 and drops the rest)."""
    if workers <= POOL_SIZE:
        return
    from requests.adapters import HTTPAdapter

    session = client._http  # google-cloud-core's shared requests session
    for scheme in ("https://", "http://"):
        session.mount(scheme, HTTPAdapter(pool_connections=POOL_SIZE, pool_maxsize=workers))


# --------------------------------------------------------------------------- buckets
def ensure_bucket(client: Any, name: str, location: str, labels: dict[str, str] | None = None) -> bool:
    """Create bucket `name` in `location` with `labels` when it does not exist; True when this call created it."""
    from google.api_core.exceptions import Conflict, Forbidden

    try:
        if client.lookup_bucket(name) is not None:
            return False
        bucket = client.bucket(name)
        bucket.labels = {str(k): str(v) for k, v in (labels or {}).items()}
        client.create_bucket(bucket, location=location, project=client.project)
        return True
    except Conflict:  # created meanwhile (a concurrent run) or taken by another project
        if client.lookup_bucket(name) is None:
            raise PermissionError(f"cloud.bucket={name}: the name is taken by another project") from None
        return False
    except Forbidden as exc:
        raise PermissionError(f"cloud.bucket={name}: access denied ({exc.message})") from None


def bucket_exists(client: Any, name: str) -> bool:
    """Whether bucket `name` exists (clean-up tells a bucket already gone from one it must keep)."""
    return client.lookup_bucket(name) is not None


def delete_bucket_if_empty(client: Any, name: str) -> bool:
    """Delete bucket `name` if it holds no objects; True when deleted (False if missing or not empty)."""
    from google.api_core.exceptions import Conflict, NotFound

    try:
        if any(True for _ in client.list_blobs(name, max_results=1)):
            return False
        client.bucket(name).delete()
        return True
    except (NotFound, Conflict):  # gone already, or an object arrived meanwhile
        return False


# --------------------------------------------------------------------------- local files
@dataclass(frozen=True)
class LocalFile:
    rel: str  # path inside the tree, '/'-separated: the object name below the prefix
    path: Path
    size: int
    crc32c: str  # base64 of the big-endian CRC32C, as GCS reports it


def file_crc32c(path: Path) -> str:
    """A file's CRC32C in GCS's form (base64 of 4 big-endian bytes), read in 1 MiB chunks."""
    import google_crc32c

    checksum = google_crc32c.Checksum()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode()


def bytes_crc32c(data: bytes) -> str:
    import google_crc32c

    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def scan_tree(local_dir: Path) -> list[LocalFile]:
    """Every file under local_dir (symlinks followed), sorted by relative name, with size and crc32c."""
    root = Path(local_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    return [LocalFile(p.relative_to(root).as_posix(), p, p.stat().st_size, file_crc32c(p)) for p in paths]


def _object_name(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if prefix else rel


def _listing(client: Any, bucket: str, prefix: str) -> dict[str, Any]:
    """Object name -> Blob for everything under the folder `prefix` (one listing, pages followed)."""
    return {blob.name: blob for blob in client.list_blobs(bucket, prefix=_folder(prefix))}


def _same(blob: Any, local: LocalFile) -> bool:
    return blob is not None and blob.size == local.size and blob.crc32c == local.crc32c


# --------------------------------------------------------------------------- upload
@dataclass
class UploadReport:
    uri: str
    files: int
    bytes: int
    uploaded: int
    skipped: int
    seconds: float
    workers: int
    blobs: list[dict] = field(default_factory=list)  # name (object name), bytes, crc32c, generation, uploaded
    replaced: list[str] = field(default_factory=list)  # objects that existed with other bytes and were rewritten
    uploaded_bytes: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def upload_tree(
    client: Any,
    local_dir: Path | str,
    uri: str,
    *,
    workers: int = 8,
    progress: bool = True,
    skip_identical: bool = True,
    markers: tuple[str, ...] = MARKERS,
    exclude: tuple[str, ...] = (),
) -> UploadReport:
    """Upload every file under local_dir to the folder `uri`, verified by crc32c; `markers` last.

    When other files of a folder change, an existing marker there (saved_model.pb; a checkpoint's
    `checkpoint` index) is deleted first and written again at the end, so no reader loads an old graph
    or index beside half-new variables. Files whose first path part is in `exclude` stay here.
    """
    started = time.perf_counter()
    bucket_name, prefix = split_uri(uri)
    files = [f for f in scan_tree(Path(local_dir)) if f.rel.split("/", 1)[0] not in exclude]
    if not files:
        raise FileNotFoundError(f"{local_dir}: no files to upload")
    existing = _listing(client, bucket_name, prefix)
    name = {f.rel: _object_name(prefix, f.rel) for f in files}
    todo, differ, stale = _transfers(files, {f.rel: existing.get(name[f.rel]) for f in files}, skip_identical, markers)
    replaced = [name[rel] for rel in differ]
    if replaced:
        shown = ", ".join(replaced[:5]) + (f" and {len(replaced) - 5} more" if len(replaced) > 5 else "")
        log.warning(
            "gcs: %d object(s) under %s held other bytes than the local files and are uploaded again: %s",
            len(replaced),
            uri,
            shown,
        )

    bucket = client.bucket(bucket_name)
    first = [f for f in files if f.rel in todo and not _is_marker(f.rel, markers)]
    last = [f for f in files if f.rel in todo and _is_marker(f.rel, markers)]
    blobs = {f.rel: bucket.blob(name[f.rel]) for f in first + last}
    _delete_objects(bucket, [name[rel] for rel in stale], workers)
    _widen_pool(client, workers)
    with _ProgressBar(progress, f"gs://{bucket_name}/{prefix}", [(blobs[f.rel], f.size) for f in first + last]):
        for phase in (first, last):  # the markers only once every other blob is up and verified
            _upload_phase(phase, blobs, workers)
            for f in phase:
                _check_uploaded(blobs[f.rel], f, bucket_name)

    rows = []
    for f in files:
        blob = blobs.get(f.rel) or existing[name[f.rel]]
        rows.append(
            {
                "name": name[f.rel],
                "bytes": f.size,
                "crc32c": f.crc32c,
                "generation": blob.generation,
                "uploaded": f.rel in todo,
            }
        )
    return UploadReport(
        uri=f"gs://{bucket_name}/{prefix}".rstrip("/"),
        files=len(files),
        bytes=sum(f.size for f in files),
        uploaded=len(todo),
        skipped=len(files) - len(todo),
        seconds=round(time.perf_counter() - started, 4),
        workers=workers,
        blobs=rows,
        replaced=replaced,
        uploaded_bytes=sum(f.size for f in files if f.rel in todo),
    )


def _is_marker(rel: str, markers: tuple[str, ...] = MARKERS) -> bool:
    return PurePosixPath(rel).name in markers


def _transfers(
    files: list[LocalFile], remote: dict[str, Any], skip_identical: bool, markers: tuple[str, ...] = MARKERS
) -> tuple[set[str], list[str], list[str]]:
    """(files to upload, existing ones whose bytes differ, existing markers to delete before phase one).

    A marker (saved_model.pb) whose folder gets any other new bytes is deleted first and written again
    last, even if identical: readers never see it beside half-replaced variables.
    """
    todo = {f.rel for f in files if not (skip_identical and _same(remote[f.rel], f))}
    replaced = sorted(f.rel for f in files if remote[f.rel] is not None and not _same(remote[f.rel], f))
    stale = []
    for marker in (f.rel for f in files if _is_marker(f.rel, markers)):
        parent = str(PurePosixPath(marker).parent)
        folder = _folder("" if parent == "." else parent)
        if remote[marker] is not None and any(rel != marker and rel.startswith(folder) for rel in todo):
            stale.append(marker)
            todo.add(marker)
    return todo, replaced, stale


def _upload_phase(phase: list[LocalFile], blobs: dict[str, Any], workers: int) -> None:
    """One transfer_manager.upload_many over threads; the first failure is raised once all have finished."""
    if not phase:
        return
    from google.cloud.storage import transfer_manager
    from google.cloud.storage.exceptions import DataCorruption

    results = transfer_manager.upload_many(
        [(str(f.path), blobs[f.rel]) for f in phase],
        worker_type=transfer_manager.THREAD,
        max_workers=workers,
        raise_exception=False,
    )
    failed = [(f, r) for f, r in zip(phase, results) if isinstance(r, BaseException)]
    if failed:
        f, exc = failed[0]
        where = f"gs://{blobs[f.rel].bucket.name}/{blobs[f.rel].name}"
        more = f" ({len(failed) - 1} more uploads failed too)" if len(failed) > 1 else ""
        if isinstance(exc, DataCorruption):
            raise IntegrityError(f"{where}: the service rejected the bytes of {f.path} (checksum){more}") from exc
        raise RuntimeError(f"upload of {f.path} to {where} failed: {exc}{more}") from exc


def _check_uploaded(blob: Any, local: LocalFile, bucket_name: str) -> None:
    if blob.crc32c is None or blob.size is None:  # an upload answer without checksum: ask for the object
        blob.reload()
    if blob.size != local.size or blob.crc32c != local.crc32c:
        raise IntegrityError(
            f"gs://{bucket_name}/{blob.name}: stored {blob.size} bytes crc32c {blob.crc32c}, "
            f"but {local.path} has {local.size} bytes crc32c {local.crc32c}"
        )


class _ProgressBar:
    """Bytes uploaded on stderr (rich), counted from blobs that received a generation; off when disabled."""

    def __init__(self, enabled: bool, label: str, items: list[tuple[Any, int]]):
        self.enabled, self.label, self.items = enabled and bool(items), label, items
        self._stop = threading.Event()

    def _done(self) -> int:
        return sum(size for blob, size in self.items if blob.generation is not None)

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            self.bar.update(self.task, completed=self._done())

    def __enter__(self) -> "_ProgressBar":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn(f"[gcs] upload {len(self.items)} file(s)"),
                BarColumn(),
                DownloadColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self.task = self.bar.add_task("upload", total=sum(size for _, size in self.items))
            self.bar.start()
            self.thread = threading.Thread(target=self._poll, name="gcs-progress", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._stop.set()
            self.thread.join()
            self.bar.update(self.task, completed=self._done())
            self.bar.stop()


# --------------------------------------------------------------------------- verify, download
def verify_tree(client: Any, local_dir: Path | str, uri: str) -> list[str]:
    """Relative names of local files whose object under `uri` is missing or differs (size or crc32c)."""
    bucket_name, prefix = split_uri(uri)
    existing = _listing(client, bucket_name, prefix)
    return [f.rel for f in scan_tree(Path(local_dir)) if not _same(existing.get(_object_name(prefix, f.rel)), f)]


def _safe_target(root: Path, rel: str, uri: str) -> Path:
    """Where object `rel` lands under root; ValueError for names that would escape it."""
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or any(p in ("..", ".") for p in parts):
        raise ValueError(f"{uri}/{rel}: object name would be written outside {root}")
    return root.joinpath(*parts)


def download_tree(client: Any, uri: str, local_dir: Path | str, *, workers: int = 8) -> int:
    """Download every object under the folder `uri` into local_dir; crc32c checked; returns the file count.

    Each object is fetched at the generation the listing saw, through the client's own endpoint.
    """
    from google.cloud.storage import transfer_manager

    bucket_name, prefix = split_uri(uri)
    root = Path(local_dir)
    listed = [b for b in _listing(client, bucket_name, prefix).values() if not b.name.endswith("/")]
    if not listed:
        raise FileNotFoundError(f"{uri}: no objects to download")
    bucket = client.bucket(bucket_name)
    plan = []
    for item in listed:
        target = _safe_target(root, item.name[len(_folder(prefix)) :], uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        plan.append((item, bucket.blob(item.name, generation=item.generation), target))
    _widen_pool(client, workers)
    transfer_manager.download_many(
        [(blob, str(target)) for _, blob, target in plan],
        worker_type=transfer_manager.THREAD,
        max_workers=workers,
        raise_exception=True,
    )
    for item, _, target in plan:
        size, crc = target.stat().st_size, file_crc32c(target)
        if size != item.size or crc != item.crc32c:
            raise IntegrityError(
                f"gs://{bucket_name}/{item.name}: downloaded {size} bytes crc32c {crc}, "
                f"the object has {item.size} bytes crc32c {item.crc32c}"
            )
    return len(plan)


# --------------------------------------------------------------------------- single objects, listing, deletion
def list_uris(client: Any, uri: str) -> list[str]:
    """gs:// URIs of every object under the folder `uri`, sorted."""
    bucket_name, prefix = split_uri(uri)
    return sorted(f"gs://{bucket_name}/{name}" for name in _listing(client, bucket_name, prefix))


def _object(client: Any, uri: str) -> Any:
    bucket_name, name = split_uri(uri)
    if not name:
        raise ValueError(f"{uri!r} names a bucket, not an object")
    return client.bucket(bucket_name).blob(name)


def read_bytes(client: Any, uri: str) -> bytes:
    """The bytes of one object (checksum-validated by the SDK); FileNotFoundError naming the uri if missing."""
    from google.api_core.exceptions import NotFound

    try:
        return _object(client, uri).download_as_bytes()
    except NotFound:
        raise FileNotFoundError(f"{uri}: no such object") from None


def write_bytes(client: Any, uri: str, data: bytes) -> None:
    """Write one object and check the stored crc32c against `data`."""
    blob = _object(client, uri)
    blob.upload_from_string(data, content_type="application/octet-stream")
    expected = bytes_crc32c(data)
    if blob.crc32c is None:
        blob.reload()
    if blob.crc32c != expected:
        raise IntegrityError(f"{uri}: stored crc32c {blob.crc32c}, written bytes have {expected}")


def _delete_objects(bucket: Any, names: Iterable[str], workers: int = 8) -> int:
    """Delete objects one request each, in parallel (batch requests fail on emulators); missing ones count 0."""
    from google.api_core.exceptions import NotFound

    def delete(name: str) -> int:
        try:
            bucket.blob(name).delete()
            return 1
        except NotFound:
            return 0

    names = list(names)
    if not names:
        return 0
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names)))) as pool:
        return sum(pool.map(delete, names))


def mirror_tree(
    client: Any, local_dir: Path | str, uri: str, *, markers: tuple[str, ...], exclude: tuple[str, ...] = ()
) -> UploadReport:
    """Make the folder `uri` hold exactly local_dir's files: upload what changed (markers last), then delete
    objects the local dir no longer has. A reader sees the old or the new set, never a marker without its files."""
    report = upload_tree(client, local_dir, uri, progress=False, markers=markers, exclude=exclude)
    bucket_name, prefix = split_uri(uri)
    keep = {row["name"] for row in report.blobs}
    _delete_objects(client.bucket(bucket_name), [n for n in _listing(client, bucket_name, prefix) if n not in keep])
    return report


def delete_prefix(client: Any, uri: str, *, workers: int = 8) -> int:
    """Delete every object under the folder `uri`; returns how many. Refuses a whole bucket (no folder)."""
    bucket_name, prefix = split_uri(uri)
    if not prefix:
        raise ValueError(f"{uri!r}: refusing to delete every object of a bucket; name a folder (gs://B/PATH)")
    return _delete_objects(client.bucket(bucket_name), _listing(client, bucket_name, prefix), workers)
