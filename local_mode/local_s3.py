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
        """Every object under an S3Prefix, as SageMaker downloads them: nothing is skipped.

        "If you choose S3Prefix, S3Uri identifies a key name prefix. SageMaker uses all objects that match
        the specified key name prefix" (S3DataSource). A marker such as Spark's ``_SUCCESS`` is therefore
        read as data too; :func:`marker_objects` names them so the local jobs can refuse them.
        """
        prefix = self.path(uri)
        if prefix.is_file():
            return [prefix]
        if not prefix.is_dir():
            return []
        return sorted(path for path in prefix.rglob("*") if path.is_file())


    def marker_objects(self, uri: str) -> list[str]:
        """Keys under the prefix that are not data: Spark/Hadoop markers (``_SUCCESS``, anything under
        ``_temporary/``), hidden files and ``.crc`` checksums, relative to the prefix."""
        prefix = self.path(uri)
        if not prefix.is_dir():
            return []
        markers = []
        for path in self.data_files(uri):
            relative = path.relative_to(prefix)
            if any(part.startswith(("_", ".")) for part in relative.parts) or path.name.endswith(
                (".crc", "_$folder$")
            ):
                markers.append(relative.as_posix())
        return markers
