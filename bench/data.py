"""Generated inputs, cached under bench/.data/ (git-ignored) so that only the first run pays for them.

- Trips: a month of NYC TLC yellow-taxi trips in the full 19-column layout, as one CSV file (header, as TLC
  published them) and one Parquet file (types as TLC publishes them today). A small share of rows is bad in
  the ways real files are (no passenger count; in CSV also a non-numeric count or an unparseable time), so
  the prep job's drop counting is on the measured path.
- Stream records: JSON lines shaped like the metrics generator's records, with a small share of bad records
  for each quarantine reason.

Everything is vectorised numpy/pyarrow and seeded; a manifest next to each data set says what made it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from local_mode.taxi_data import TLC_YELLOW_COLUMNS

DATA_ROOT = Path(__file__).resolve().parent / ".data"
# Bump when the generators change, so cached files are regenerated.
GENERATOR_VERSION = 2
MONTH_START = np.datetime64("2024-01-01T00:00:00", "s")
MONTH_DAYS = 31
CHUNK_ROWS = 1_000_000
MISSING_PASSENGER_SHARE = 0.002
NON_NUMERIC_PASSENGER_SHARE = 0.0005  # CSV only: Parquet's typed column cannot hold text
BAD_PICKUP_SHARE = 0.0001  # CSV only
# Relative trips per hour of day: a night trough and morning/evening peaks.
_HOURLY_WEIGHTS = np.array(
    [45, 30, 20, 14, 12, 18, 45, 80, 100, 95, 85, 85, 90, 90, 95, 100, 105, 115, 125, 120, 105, 95, 85, 65], float
)
_HOURLY_WEIGHTS /= _HOURLY_WEIGHTS.sum()


@dataclass(frozen=True)
class TripFiles:
    rows: int
    csv_folder: Path
    parquet_folder: Path

    def folder(self, input_format: str) -> Path:
        return self.csv_folder if input_format == "csv" else self.parquet_folder


def _is_cached(folder: Path, manifest: dict[str, object]) -> bool:
    manifest_path = folder / "_manifest.json"
    return manifest_path.exists() and json.loads(manifest_path.read_text()) == manifest


def _write_manifest(folder: Path, manifest: dict[str, object]) -> None:
    # The leading underscore makes the prep job skip the file, as it skips Spark's _SUCCESS markers.
    (folder / "_manifest.json").write_text(json.dumps(manifest))


def _trip_chunk(rng: np.random.Generator, rows: int, days: int = MONTH_DAYS) -> dict[str, np.ndarray]:
    day = rng.integers(0, days, rows)
    hour = rng.choice(24, size=rows, p=_HOURLY_WEIGHTS)
    second = rng.integers(0, 3600, rows)
    pickup = MONTH_START + (day * 86_400 + hour * 3600 + second).astype("timedelta64[s]")
    duration = rng.integers(120, 3600, rows).astype("timedelta64[s]")
    distance = np.round(rng.gamma(2.0, 1.6, rows), 2)
    fare = np.round(3.0 + distance * 2.5 + rng.random(rows) * 4, 2)
    tip = np.round(fare * rng.choice([0.0, 0.15, 0.2, 0.25], rows), 2)
    passengers = rng.choice([1, 2, 3, 4, 5, 6], size=rows, p=[0.70, 0.15, 0.05, 0.03, 0.04, 0.03])
    return {
        "VendorID": rng.integers(1, 3, rows),
        "tpep_pickup_datetime": pickup,
        "tpep_dropoff_datetime": pickup + duration,
        "passenger_count": passengers,
        "trip_distance": distance,
        "RatecodeID": np.ones(rows),
        "store_and_fwd_flag": np.where(rng.random(rows) < 0.005, "Y", "N"),
        "PULocationID": rng.integers(1, 266, rows),
        "DOLocationID": rng.integers(1, 266, rows),
        "payment_type": rng.integers(1, 5, rows),
        "fare_amount": fare,
        "extra": np.round(rng.choice([0.0, 0.5, 1.0, 2.5], rows), 2),
        "mta_tax": np.full(rows, 0.5),
        "tip_amount": tip,
        "tolls_amount": np.where(rng.random(rows) < 0.05, 6.94, 0.0),
        "improvement_surcharge": np.full(rows, 1.0),
        "total_amount": np.round(fare + tip + 1.5, 2),
        "congestion_surcharge": np.full(rows, 2.5),
        "airport_fee": np.where(rng.random(rows) < 0.08, 1.75, 0.0),
    }


def _parquet_table(columns: dict[str, np.ndarray], rng: np.random.Generator) -> pa.Table:
    rows = len(columns["VendorID"])
    missing = rng.random(rows) < MISSING_PASSENGER_SHARE
    # TLC's Parquet files today: passenger_count a nullable double, timestamps without a zone.
    passengers = pa.array(columns["passenger_count"].astype(float), mask=missing)
    arrays = {name: pa.array(values) for name, values in columns.items()}
    arrays["passenger_count"] = passengers
    # Parquet cannot store second-resolution timestamps; TLC's files use microseconds.
    for name in ("tpep_pickup_datetime", "tpep_dropoff_datetime"):
        arrays[name] = pa.array(columns[name].astype("datetime64[us]"))
    return pa.table([arrays[name] for name in TLC_YELLOW_COLUMNS], names=list(TLC_YELLOW_COLUMNS))


def _csv_table(columns: dict[str, np.ndarray], rng: np.random.Generator) -> pa.Table:
    rows = len(columns["VendorID"])
    draw = rng.random(rows)
    passengers = pc.cast(pa.array(columns["passenger_count"]), pa.string())
    passengers = pc.if_else(pa.array(draw < MISSING_PASSENGER_SHARE), pa.scalar("", pa.string()), passengers)
    non_numeric = (draw >= MISSING_PASSENGER_SHARE) & (draw < MISSING_PASSENGER_SHARE + NON_NUMERIC_PASSENGER_SHARE)
    passengers = pc.if_else(pa.array(non_numeric), pa.scalar("n/a", pa.string()), passengers)
    pickups = pc.cast(pa.array(columns["tpep_pickup_datetime"]), pa.string())
    bad_pickup = pa.array(rng.random(rows) < BAD_PICKUP_SHARE)
    pickups = pc.if_else(bad_pickup, pa.scalar("not a time", pa.string()), pickups)
    arrays = {name: pa.array(values) for name, values in columns.items()}
    arrays["passenger_count"] = passengers
    arrays["tpep_pickup_datetime"] = pickups
    return pa.table([arrays[name] for name in TLC_YELLOW_COLUMNS], names=list(TLC_YELLOW_COLUMNS))


def ensure_trips(rows: int, say: Callable[[str], None], seed: int = 11) -> TripFiles:
    """Return the cached CSV and Parquet trip files of ``rows`` rows, generating them if needed."""
    base = DATA_ROOT / f"trips_{rows}"
    files = TripFiles(rows=rows, csv_folder=base / "csv", parquet_folder=base / "parquet")
    manifest: dict[str, object] = {"version": GENERATOR_VERSION, "rows": rows, "seed": seed}
    if _is_cached(base, manifest):
        return files
    say(f"generating {rows:,} TLC-layout trips (CSV and Parquet) under {base} (cached for later runs)")
    for folder in (files.csv_folder, files.parquet_folder):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
    rng = np.random.default_rng(seed)
    csv_path = files.csv_folder / "yellow_tripdata.csv"
    parquet_path = files.parquet_folder / "yellow_tripdata.parquet"
    parquet_writer: pq.ParquetWriter | None = None
    with csv_path.open("wb") as csv_out:
        # TLC headers are unquoted; pyarrow would quote them, so the header is written by hand.
        csv_out.write((",".join(TLC_YELLOW_COLUMNS) + "\n").encode())
        for start in range(0, rows, CHUNK_ROWS):
            columns = _trip_chunk(rng, min(CHUNK_ROWS, rows - start))
            csv_table = _csv_table(columns, rng)
            pa_csv.write_csv(
                csv_table, csv_out, write_options=pa_csv.WriteOptions(include_header=False, quoting_style="none")
            )
            parquet_table = _parquet_table(columns, rng)
            if parquet_writer is None:
                parquet_writer = pq.ParquetWriter(parquet_path, parquet_table.schema, compression="snappy")
            parquet_writer.write_table(parquet_table, row_group_size=CHUNK_ROWS)
    if parquet_writer is not None:
        parquet_writer.close()
    _write_manifest(base, manifest)
    return files


def ensure_small_trip_file(rows: int, days: int, say: Callable[[str], None], seed: int = 13) -> Path:
    """A small TLC CSV file covering ``days`` days, for runs where the trips are not what is measured."""
    base = DATA_ROOT / f"small_trips_{rows}_{days}d"
    manifest: dict[str, object] = {"version": GENERATOR_VERSION, "rows": rows, "days": days, "seed": seed}
    path = base / "yellow_tripdata_small.csv"
    if _is_cached(base, manifest):
        return path
    say(f"generating {rows:,} TLC-layout trips over {days} days under {base}")
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with path.open("wb") as csv_out:
        csv_out.write((",".join(TLC_YELLOW_COLUMNS) + "\n").encode())
        table = _csv_table(_trip_chunk(rng, rows, days), rng)
        pa_csv.write_csv(table, csv_out, write_options=pa_csv.WriteOptions(include_header=False, quoting_style="none"))
    _write_manifest(base, manifest)
    return path


# --- Stream records ------------------------------------------------------------------------------------------

_MARKETPLACES = np.array(["us", "uk", "de", "fr", "jp", "in", "br", "ca", "es", "it"])
_PLATFORMS = np.array(["web", "ios", "android"])
STREAM_START = np.datetime64("2026-11-25T19:00:00", "s")
STREAM_SPAN_SECONDS = 2 * 3600
INVALID_JSON_SHARE = 0.005
MISSING_FIELD_SHARE = 0.002
BAD_TIMESTAMP_SHARE = 0.002
NON_NUMERIC_VIEWS_SHARE = 0.001


def _stream_lines(rng: np.random.Generator, records: int) -> list[str]:
    marketplaces = rng.choice(_MARKETPLACES, records).tolist()
    platforms = rng.choice(_PLATFORMS, records).tolist()
    times = (STREAM_START + rng.integers(0, STREAM_SPAN_SECONDS, records).astype("timedelta64[s]")).astype(str)
    event_times = np.char.replace(times, "T", " ").tolist()
    views = rng.poisson(12, records).tolist()
    revenue = np.round(rng.gamma(2.0, 15.0, records), 2).tolist()
    kind = rng.random(records)
    lines = []
    for index in range(records):
        share = kind[index]
        view_text = str(views[index])
        event_time = event_times[index]
        marketplace = f'"marketplace": "{marketplaces[index]}", '
        if share < NON_NUMERIC_VIEWS_SHARE:
            view_text = '"many"'
        elif share < NON_NUMERIC_VIEWS_SHARE + BAD_TIMESTAMP_SHARE:
            event_time = "yesterday"
        elif share < NON_NUMERIC_VIEWS_SHARE + BAD_TIMESTAMP_SHARE + MISSING_FIELD_SHARE:
            marketplace = ""
        line = (
            f'{{"platform": "{platforms[index]}", {marketplace}"event_time": "{event_time}", '
            f'"views": {view_text}, "revenue": {revenue[index]}}}'
        )
        if share > 1 - INVALID_JSON_SHARE:
            line = line[: len(line) // 2]  # a record cut in half
        lines.append(line)
    return lines


def ensure_stream_records(records: int, say: Callable[[str], None], seed: int = 23) -> Path:
    """Return a cached JSON-lines file of ``records`` stream records, generating it if needed."""
    base = DATA_ROOT / f"stream_{records}"
    manifest: dict[str, object] = {"version": GENERATOR_VERSION, "records": records, "seed": seed}
    path = base / "records.jsonl"
    if _is_cached(base, manifest):
        return path
    say(f"generating {records:,} stream records under {base} (cached for later runs)")
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, records, CHUNK_ROWS):
            out.write("\n".join(_stream_lines(rng, min(CHUNK_ROWS, records - start))) + "\n")
    _write_manifest(base, manifest)
    return path
