"""How readable the labelled logos of a generated dataset are, read from what make_tfrecords
recorded: params.jsonl holds, for every labelled object, the gate's scores (synth.gate.score,
computed whether or not the gate is on) beside the draws that made it (blend mode, placement mode,
colourway). A rendering bug that leaves a box on a logo nobody can see shows up here as a group
of objects whose `match` (how much of the artwork's structure the composite shows) is low: the
feather blend that wiped thin logos out (fixed 2026-12-04) was 23 % of its objects below 0.5.

`read_objects` reads the records, `summarize` counts the objects below a match threshold by class,
blend mode, placement mode and colourway, `weakest` picks the lowest-scoring objects, and
`weakest_sheet` draws them, cropped from the shards as written (what the detector will see)."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from dataclasses import dataclass

import cv2
import numpy as np

from synth import boxes as boxlib, preview, tfexample, tfrecord_io
from synth import tfrecord_keys as K
from synth.errors import RecordError

WEAK_MATCH = 0.5  # below this the composite shows less than half of the artwork's structure
TILE = 128  # px, the side of a tile of weakest_sheet
GROUPS = ("class", "blend", "placement", "colourway")


@dataclass(frozen=True)
class ObjectScore:
    """One labelled object of params.jsonl: where it is, how it was drawn, its gate scores."""
    source_id: str  # the record's image/source_id, e.g. train-00000012
    object_index: int  # its index among the record's labelled objects (boxes, class ids)
    class_text: str
    blend: str  # blend mode drawn: hard, feather, poisson, laplacian
    placement: str  # region, closeup, ... (scene's object mode)
    colourway: str
    box: tuple  # normalised ymin, xmin, ymax, xmax
    match: float
    size_px: float
    contrast: float

    def group(self, kind: str) -> str:
        return {"class": self.class_text, "blend": self.blend, "placement": self.placement,
                "colourway": self.colourway}[kind]


@dataclass(frozen=True)
class GroupRow:
    kind: str  # one of GROUPS, or "all"
    name: str
    objects: int
    weak: int  # objects with match below the threshold
    match_p10: float
    match_median: float

    @property
    def weak_share(self) -> float:
        return self.weak / self.objects if self.objects else 0.0


def _bad(path: str, line: int, what: str) -> RecordError:
    return RecordError(f"{path} line {line}: {what}")


def has_scores(params_path: str) -> bool:
    """Whether the params.jsonl file's first record is a logo composite's with gate scores (a
    header dataset's records, or those of a version before the scores were recorded, have none)."""
    with open(params_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    return True  # read_objects names the bad line
                return isinstance(r, dict) and isinstance(r.get("params"), dict) and "scores" in r
    return False


def read_objects(params_path: str, class_names: dict[int, str]) -> list[ObjectScore]:
    """Every labelled object of a params.jsonl file. `class_names`: the label map (id -> name).
    A line that is not a record make_tfrecords writes (not JSON, objects, boxes, class ids and
    scores of different lengths, a class id not in the label map) raises RecordError naming the
    file and the line."""
    out = []
    try:
        f = open(params_path, encoding="utf-8")
    except OSError as exc:
        raise RecordError(f"{params_path}: cannot be read ({exc.strerror})") from None
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _bad(params_path, n, f"not JSON ({exc.msg})") from None
            if not isinstance(r, dict) or not isinstance(r.get("params"), dict):
                raise _bad(params_path, n, "not a composite's record (no \"params\" object)")
            if "scores" not in r:
                raise _bad(params_path, n, "no \"scores\": written by a version without gate scores")
            try:
                sid = f"{r['split']}-{int(r['index']):08d}"
                objects, boxes, ids, scores = r["params"]["objects"], r["boxes"], r["class_ids"], r["scores"]
            except (KeyError, TypeError, ValueError) as exc:
                raise _bad(params_path, n, f"field {exc} is missing or malformed") from None
            lengths = {len(objects), len(boxes), len(ids), len(scores)}
            if len(lengths) != 1:
                raise _bad(params_path, n, f"{sid} has {len(objects)} objects, {len(boxes)} boxes, "
                                           f"{len(ids)} class ids and {len(scores)} scores; they must be equal")
            for k, (o, b, cid, sc) in enumerate(zip(objects, boxes, ids, scores)):
                if cid not in class_names:
                    raise _bad(params_path, n, f"{sid} object {k}: class id {cid} is not in the label map "
                                               f"({sorted(class_names)})")
                try:
                    out.append(ObjectScore(sid, k, class_names[cid], str((o.get("blend") or {}).get("mode", "none")),
                                           str(o.get("mode", "?")), str(o.get("colourway", "?")),
                                           tuple(float(v) for v in b), float(sc["match"]),
                                           float(sc["size_px"]), float(sc["contrast"])))
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    raise _bad(params_path, n, f"{sid} object {k}: {type(exc).__name__} {exc}") from None
    return out


def _row(kind: str, name: str, matches: list[float], threshold: float) -> GroupRow:
    m = np.asarray(matches, np.float64)
    return GroupRow(kind, name, len(m), int((m < threshold).sum()),
                    round(float(np.percentile(m, 10)), 3), round(float(np.median(m)), 3))


def summarize(objects: list[ObjectScore], threshold: float = WEAK_MATCH) -> list[GroupRow]:
    """One row for all objects, then one per class, blend mode, placement mode and colourway
    (in that order, names sorted): objects, how many match below `threshold`, the 10th
    percentile and median of match."""
    if not objects:
        return []
    rows = [_row("all", "all", [o.match for o in objects], threshold)]
    for kind in GROUPS:
        groups = defaultdict(list)
        for o in objects:
            groups[o.group(kind)].append(o.match)
        rows += [_row(kind, name, groups[name], threshold) for name in sorted(groups)]
    return rows


def weakest(objects: list[ObjectScore], count: int) -> list[ObjectScore]:
    """The `count` objects with the lowest match (ties: the smaller, then the earlier)."""
    return sorted(objects, key=lambda o: (o.match, o.size_px, o.source_id, o.object_index))[:max(0, count)]


def format_table(rows: list[GroupRow], threshold: float = WEAK_MATCH) -> str:
    if not rows:
        return "label audit: no labelled objects"
    lines = [f"label audit (gate scores in params.jsonl): objects whose match is below {threshold:g}",
             f"  {'group':<10} {'name':<16} {'objects':>8} {'weak':>6} {'weak %':>7} {'match p10':>10} "
             f"{'median':>7}"]
    for r in rows:
        lines.append(f"  {r.kind:<10} {r.name:<16} {r.objects:>8} {r.weak:>6} {100 * r.weak_share:>6.1f}% "
                     f"{r.match_p10:>10.3f} {r.match_median:>7.3f}")
    return "\n".join(lines)


def crop_tile(rgb: np.ndarray, box, tile: int = TILE) -> np.ndarray:
    """The object's box grown by half its size on each side (clipped to the image), its box drawn,
    scaled to fit a `tile` x `tile` square (kept aspect, padded dark)."""
    h, w = rgb.shape[:2]
    y0, x0, y1, x1 = boxlib.to_pixels(np.asarray(box, np.float64), h, w)
    gy, gx = (y1 - y0) / 2, (x1 - x0) / 2
    cy0, cx0 = int(max(0, np.floor(y0 - gy))), int(max(0, np.floor(x0 - gx)))
    cy1, cx1 = int(min(h, np.ceil(y1 + gy))), int(min(w, np.ceil(x1 + gx)))
    crop = rgb[cy0:max(cy1, cy0 + 1), cx0:max(cx1, cx0 + 1)].copy()
    s = tile / max(crop.shape[:2])
    out_w, out_h = max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))
    crop = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_NEAREST)
    r0 = (np.array([y0 - cy0, x0 - cx0, y1 - cy0, x1 - cx0]) * s).round().astype(int)
    cv2.rectangle(crop, (int(r0[1]), int(r0[0])), (int(r0[3]) - 1, int(r0[2]) - 1), (0, 255, 0), 1)
    tile_img = np.full((tile, tile, 3), 24, np.uint8)
    tile_img[:out_h, :out_w] = crop
    return tile_img


def _caption(tile_img: np.ndarray, o: ObjectScore) -> np.ndarray:
    bar = np.full((26, tile_img.shape[1], 3), 0, np.uint8)
    for k, text in enumerate((f"{o.source_id}#{o.object_index} {o.class_text}",
                              f"{o.blend} {o.placement} m{o.match:.2f} {o.size_px:.0f}px")):
        cv2.putText(bar, text, (2, 10 + 12 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (230, 230, 230), 1, cv2.LINE_AA)
    return np.concatenate([tile_img, bar], 0)


def weakest_sheet(shards: list[str], objects: list[ObjectScore], cols: int = 6, tile: int = TILE) -> np.ndarray:
    """A contact sheet of `objects` (e.g. `weakest`'s), each cropped from its record in `shards`
    as written, captioned with source_id#object, class, blend and placement mode, match and size.
    A source_id found in no shard raises RecordError naming it."""
    if not objects:
        raise ValueError("weakest_sheet needs at least one object")
    wanted = {o.source_id for o in objects}
    images = {}
    for raw in itertools.chain.from_iterable(tfrecord_io.read_records(p) for p in shards):
        f = tfexample.decode_features(raw)
        sid = f[K.IMAGE_SOURCE_ID][0].decode()
        if sid in wanted:
            bgr = cv2.imdecode(np.frombuffer(f[K.IMAGE_ENCODED][0], np.uint8), cv2.IMREAD_COLOR)
            images[sid] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if len(images) == len(wanted):
                break
    missing = sorted(wanted - set(images))
    if missing:
        raise RecordError(f"params.jsonl names {missing[:3]} which no shard of {len(shards)} holds")
    return preview.contact_sheet([_caption(crop_tile(images[o.source_id], o.box, tile), o) for o in objects],
                                 cols=cols)
