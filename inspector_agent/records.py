"""The SQLite inspection log: every inspection once (by request id) and supervisor feedback."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inspector_agent.atomic_files import write_bytes_atomic
from inspector_agent.errors import InspectorError
from inspector_agent.schema import InspectionResult, Verdict

SCHEMA = """
CREATE TABLE IF NOT EXISTS inspections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    ts TEXT NOT NULL,
    user TEXT NOT NULL DEFAULT '',
    thread_id TEXT NOT NULL DEFAULT '',
    product_id TEXT NOT NULL,
    serial TEXT NOT NULL DEFAULT '',
    lot TEXT NOT NULL DEFAULT '',
    image_hash TEXT NOT NULL,
    image_path TEXT NOT NULL,
    reference_paths TEXT NOT NULL DEFAULT '[]',
    overlay_path TEXT NOT NULL DEFAULT '',
    verdict TEXT NOT NULL,
    pred_score REAL NOT NULL,
    defects TEXT NOT NULL DEFAULT '[]',
    grounder TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    latency_ms REAL NOT NULL DEFAULT 0,
    result TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS inspections_product_ts ON inspections (product_id, ts);
CREATE INDEX IF NOT EXISTS inspections_serial ON inspections (serial);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    inspection_id INTEGER NOT NULL REFERENCES inspections (id),
    ts TEXT NOT NULL,
    user TEXT NOT NULL DEFAULT '',
    correct INTEGER NOT NULL,
    verdict TEXT,
    defects TEXT,
    comment TEXT NOT NULL DEFAULT ''
);
"""


class RecordsError(InspectorError):
    """A records query or update that cannot be done as asked."""


@dataclass
class Inspection:
    """One logged inspection as read back from the log."""

    id: int
    request_id: str
    ts: str
    user: str
    thread_id: str
    product_id: str
    serial: str
    lot: str
    image_hash: str
    image_path: str
    reference_paths: list[str]
    overlay_path: str
    verdict: str
    pred_score: float
    defects: list[dict[str, Any]]
    grounder: str
    model: str
    latency_ms: float
    feedback: list[dict[str, Any]] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        """Defect labels, in order."""
        return [str(d.get("label", "")) for d in self.defects]


def now_iso() -> str:
    """The current UTC time as ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def store_upload(source: str | Path, uploads_dir: Path) -> tuple[str, Path]:
    """Copy an uploaded file under ``uploads_dir`` by content hash; returns (hash, stored path)."""
    src = Path(source)
    digest = file_sha256(src)
    dest = uploads_dir / digest[:2] / f"{digest}{src.suffix.lower()[:6]}"
    if not dest.exists():
        try:
            write_bytes_atomic(dest, src.read_bytes())  # creates the folder too
        except OSError as exc:  # a full or read-only disk: say so, not a traceback
            raise RecordsError(
                f"the photo could not be saved on the server ({exc.strerror or exc}); "
                "nothing was inspected or recorded: tell an engineer"
            ) from None
    return digest, dest


class RecordStore:
    """Thread-safe inspection log on one SQLite file (WAL, one shared connection under a lock)."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating if needed) the log at ``path``."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise RecordsError(f"cannot open the inspection log {self.path}: {exc}") from None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._conn:
            yield self._conn

    def record(
        self,
        request_id: str,
        result: InspectionResult,
        *,
        product_id: str,
        image_hash: str,
        image_path: str | Path,
        reference_paths: list[str] | None = None,
        overlay_path: str | Path | None = None,
        user: str = "",
        serial: str = "",
        lot: str = "",
        thread_id: str = "",
    ) -> int:
        """Log one inspection; a repeated ``request_id`` returns the existing row's id."""
        data = result.to_dict()
        row = (
            request_id,
            now_iso(),
            user or "",
            thread_id or "",
            product_id,
            serial or "",
            lot or "",
            image_hash,
            str(image_path),
            json.dumps([str(p) for p in reference_paths or []]),
            str(overlay_path or ""),
            result.verdict.value,
            float(result.pred_score),
            json.dumps(data["defects"]),
            result.grounder,
            result.model,
            float(result.latency_ms),
            json.dumps(data),
        )
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO inspections (request_id, ts, user, thread_id, product_id,"
                " serial, lot, image_hash, image_path, reference_paths, overlay_path, verdict,"
                " pred_score, defects, grounder, model, latency_ms, result)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                row,
            )
            found = conn.execute(
                "SELECT id FROM inspections WHERE request_id = ?", (request_id,)
            ).fetchone()
        return int(found["id"])

    def get(self, inspection_id: int) -> Inspection:
        """One inspection with its feedback, or :class:`RecordsError`."""
        rows = self._select("WHERE i.id = ?", (int(inspection_id),), limit=1)
        if not rows:
            raise RecordsError(f"no inspection with id {inspection_id}")
        return rows[0]

    def query(
        self,
        *,
        product_id: str | None = None,
        serial: str | None = None,
        verdict: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 200,
    ) -> list[Inspection]:
        """Inspections matching every given filter, newest first (dates as ISO strings)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("product_id", product_id), ("verdict", verdict)):
            if value:
                clauses.append(f"i.{column} = ?")
                params.append(value)
        if serial:
            clauses.append("(i.serial = ? OR i.lot = ?)")
            params += [serial, serial]
        if verdict and verdict not in {v.value for v in Verdict}:
            raise RecordsError(f"unknown verdict {verdict!r}; use ok or defective")
        if since:
            clauses.append("i.ts >= ?")
            params.append(_iso(since))
        if until:
            clauses.append("i.ts < ?")
            params.append(_iso(until))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._select(where, tuple(params), limit=limit)

    def count(self, **filters: Any) -> int:
        """How many inspections match the filters of :meth:`query`."""
        return len(self.query(limit=1_000_000, **filters))

    def add_feedback(
        self,
        inspection_id: int,
        correct: bool,
        *,
        user: str = "",
        verdict: str | None = None,
        defects: list[dict[str, Any]] | None = None,
        comment: str = "",
    ) -> int:
        """Store a supervisor's judgement (and optional corrected verdict/defects); returns its id."""
        self.get(inspection_id)
        if verdict is not None and verdict not in {v.value for v in Verdict}:
            raise RecordsError(f"unknown verdict {verdict!r}; use ok or defective")
        for d in defects or []:
            box = d.get("bbox")
            if not d.get("label") or not isinstance(box, list) or len(box) != 4:
                raise RecordsError(
                    "each corrected defect needs a label and a bbox [x1, y1, x2, y2]"
                )
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO feedback (inspection_id, ts, user, correct, verdict, defects, comment)"
                " VALUES (?,?,?,?,?,?,?)",
                (
                    int(inspection_id),
                    now_iso(),
                    user or "",
                    int(bool(correct)),
                    verdict,
                    None if defects is None else json.dumps(defects),
                    comment or "",
                ),
            )
        return int(cur.lastrowid or 0)

    def _select(self, where: str, params: tuple[Any, ...], *, limit: int) -> list[Inspection]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT * FROM inspections i {where} ORDER BY i.id DESC LIMIT ?",
                (*params, int(limit)),
            ).fetchall()
            ids = [r["id"] for r in rows]
            marks = ",".join("?" * len(ids))
            feedback = (
                self._conn.execute(
                    f"SELECT * FROM feedback WHERE inspection_id IN ({marks}) ORDER BY id", ids
                ).fetchall()
                if ids
                else []
            )
        by_id: dict[int, list[dict[str, Any]]] = {}
        for f in feedback:
            item = dict(f)
            item["correct"] = bool(item["correct"])
            item["defects"] = None if item["defects"] is None else json.loads(item["defects"])
            by_id.setdefault(item["inspection_id"], []).append(item)
        return [_to_inspection(r, by_id.get(r["id"], [])) for r in rows]


def _to_inspection(row: sqlite3.Row, feedback: list[dict[str, Any]]) -> Inspection:
    data = {k: row[k] for k in row.keys() if k != "result"}  # noqa: SIM118
    data["reference_paths"] = json.loads(data["reference_paths"])
    data["defects"] = json.loads(data["defects"])
    return Inspection(**data, feedback=feedback)


def _iso(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RecordsError(f"not a date: {value!r} (use YYYY-MM-DD)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="seconds")
