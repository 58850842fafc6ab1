"""The one place where `s3://<bucket>/<key>` maps to `<out>/s3/<bucket>/<key>` and back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline_callback.message import is_s3_uri


@dataclass(frozen=True)
class LocalS3:
    """A folder standing in for S3: each bucket is a sub-folder of `root`."""

    root: Path

    def path(self, uri: str) -> Path:
        if not is_s3_uri(uri):
            raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
        bucket_and_key = uri[len("s3://") :]
        return self.root.joinpath(*[part for part in bucket_and_key.split("/") if part])

    def file_uri(self, uri: str) -> str:
        """What Spark and Hadoop are given instead of the s3:// URI; keeps a trailing slash."""
        local = self.path(uri).resolve().as_uri()
        return local + "/" if uri.endswith("/") else local

    def uri(self, path: Path) -> str:
        relative = path.resolve().relative_to(self.root.resolve())
        return "s3://" + relative.as_posix()

    def as_s3_text(self, text: str) -> str:
        """Rewrite local paths in a message (e.g. a Spark error) back to the s3:// URIs the caller used."""
        resolved = self.root.resolve()
        for prefix in (resolved.as_uri() + "/", f"file:{resolved}/", f"{resolved}/"):
            text = text.replace(prefix, "s3://")
        return text

    def data_files(self, uri: str) -> list[Path]:
        """Objects under an S3Prefix, as SageMaker would download them.

        Names starting with `_` or `.` are skipped: Spark's `_SUCCESS` marker is empty, and the `.crc`
        checksum files exist only on a local filesystem, never in S3.
        """
        prefix = self.path(uri)
        if prefix.is_file():
            return [prefix]
        if not prefix.is_dir():
            return []
        return sorted(
            path
            for path in prefix.rglob("*")
            if path.is_file() and not any(part.startswith(("_", ".")) for part in path.relative_to(prefix).parts)
        )
