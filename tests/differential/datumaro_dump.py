"""Datumaro's view of a data set, as normalised JSON, for tests/it/differential.rs.

    datumaro_dump.py import NAME=FORMAT:DIR ...
        For each data set, Datumaro's import (`Dataset.import_from(DIR, FORMAT)`):
        {"datumaro": VERSION, "datasets": {NAME: {PATH: FRAME}}}, where PATH is the
        frame's image relative to DIR and FRAME is {"subset", "width", "height", "objects"}; each
        object is {"kind", "class", "box": [x, y, w, h], "id", "group"}: every annotation,
        whatever its type (the test decides what a dsv object corresponds to), box in
        pixels from the top-left corner (Datumaro's `get_bbox()`), sorted.

    datumaro_dump.py compare FORMAT DIR_A DIR_B
        The changes from A to B as Datumaro's DistanceComparator (IoU 0.5) sees them:
        {"frames_added": [PATH], "frames_removed": [PATH], "changes": {PATH: [CHANGE]},
        "sizes": {PATH: [width, height]}}.
        DistanceComparator pairs boxes of two versions of an item: a pair with the same
        label is a match (reported here as "moved" when the box differs by more than
        0.005 px, else left out), a pair with different labels a mismatch
        ("reclassified"; labels compared by name, as the two versions may number
        them differently), unpaired boxes "removed" / "added". Items only in B (A) have
        all their boxes added (removed). Only boxes are compared (and COCO's
        segmentations, which belong to a box): any other shape is an error. CHANGE is {"kind", "class", "old_class",
        "before", "after"}.

Prints one JSON document on stdout; any failure is a traceback and a non-zero exit.
"""

import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")

import datumaro as dm  # noqa: E402
from datumaro.components.annotation import AnnotationType  # noqa: E402
from datumaro.components.comparator import DistanceComparator  # noqa: E402

BOX_EPS = 0.005


def rnd(v):
    return round(float(v), 4) + 0.0


def load(fmt, root):
    """Datumaro's items of the data set, each with its label categories."""
    if fmt == "roboflow_voc":
        # Datumaro's roboflow_voc numbers the labels of each subset in the order it
        # meets them, and refuses to merge subsets whose orders differ (an edit that
        # adds a class to one subset only): each subset is read on its own.
        out = []
        for sub in sorted(os.listdir(root)):
            if os.path.isdir(os.path.join(root, sub)) and not sub.startswith("."):
                out.extend(load("roboflow_voc_subset", os.path.join(root, sub)))
        return out
    if fmt == "roboflow_voc_subset":
        fmt = "roboflow_voc"
    ds = dm.Dataset.import_from(root, fmt)
    cats = ds.categories().get(AnnotationType.label)
    return [(item, cats) for item in ds]


def class_name(cats, ann):
    label = getattr(ann, "label", None)
    if label is None or cats is None:
        return None
    return cats[label].name


def frame_path(item, root):
    path = getattr(item.media, "path", None)
    if not path:
        return f"<no media: {item.subset}/{item.id}>"
    return os.path.relpath(path, root)


def dump_frames(fmt, root):
    frames = {}
    for item, cats in load(fmt, root):
        size = getattr(item.media, "size", None) if item.media is not None else None
        objects = []
        for ann in item.annotations:
            box = ann.get_bbox() if hasattr(ann, "get_bbox") else None
            objects.append(
                {
                    "kind": ann.type.name,
                    "class": class_name(cats, ann),
                    "box": [rnd(v) for v in box] if box is not None else None,
                    "id": ann.id,
                    "group": ann.group,
                }
            )
        objects.sort(key=lambda o: (o["kind"], o["class"] or "", o["box"] or []))
        path = frame_path(item, root)
        if path in frames:
            raise SystemExit(f"two Datumaro items have the image {path}")
        frames[path] = {
            "subset": item.subset,
            "width": size[1] if size else None,
            "height": size[0] if size else None,
            "objects": objects,
        }
    return frames


def box_of(ann):
    return [rnd(v) for v in ann.get_bbox()]


def compare(fmt, root_a, root_b):
    items_a = {frame_path(i, root_a): (i, c) for i, c in load(fmt, root_a)}
    items_b = {frame_path(i, root_b): (i, c) for i, c in load(fmt, root_b)}
    out = {"frames_added": [], "frames_removed": [], "changes": {}, "sizes": {}}
    for items in (items_a, items_b):
        for path, (item, _) in items.items():
            size = getattr(item.media, "size", None) if item.media is not None else None
            if size:
                out["sizes"][path] = [size[1], size[0]]
    comparator = DistanceComparator(iou_threshold=0.5)

    # COCO's polygons and masks are the segmentation of a bbox annotation (same id);
    # any other shape would be left out of the comparison, so it is refused.
    allowed = {"bbox", "polygon", "mask"} if "coco" in fmt else {"bbox"}

    def boxes(item):
        other = {a.type.name for a in item.annotations} - allowed
        if other:
            raise SystemExit(f"compare: {item.id} has {sorted(other)} annotations, which this script does not compare")
        return [a for a in item.annotations if a.type == AnnotationType.bbox]

    for path in sorted(set(items_a) | set(items_b)):
        a, cats_a = items_a.get(path, (None, None))
        b, cats_b = items_b.get(path, (None, None))
        changes = []
        if a is None:
            out["frames_added"].append(path)
            for ann in boxes(b):
                changes.append(change("added", class_name(cats_b, ann), None, None, box_of(ann)))
        elif b is None:
            out["frames_removed"].append(path)
            for ann in boxes(a):
                changes.append(change("removed", class_name(cats_a, ann), None, box_of(ann), None))
        else:
            boxes(a), boxes(b)
            matches, mismatches, a_extra, b_extra = comparator.match_boxes(a, b)
            # The comparator tells pairs apart by label index; the two versions may
            # number their labels differently, so pairs are told apart by name here.
            for pa, pb in list(matches) + list(mismatches):
                before, after = box_of(pa), box_of(pb)
                old, new = class_name(cats_a, pa), class_name(cats_b, pb)
                if old != new:
                    changes.append(change("reclassified", new, old, before, after))
                elif any(abs(x - y) > BOX_EPS for x, y in zip(before, after)):
                    changes.append(change("moved", new, None, before, after))
            for ann in a_extra:
                changes.append(change("removed", class_name(cats_a, ann), None, box_of(ann), None))
            for ann in b_extra:
                changes.append(change("added", class_name(cats_b, ann), None, None, box_of(ann)))
        if changes:
            changes.sort(key=lambda c: (c["kind"], c["class"] or "", c["before"] or [], c["after"] or []))
            out["changes"][path] = changes
    return out


def change(kind, cls, old_cls, before, after):
    return {"kind": kind, "class": cls, "old_class": old_cls, "before": before, "after": after}


def main(argv):
    if len(argv) >= 2 and argv[0] == "import":
        result = {"datumaro": dm.__version__, "datasets": {}}
        for spec in argv[1:]:
            name, rest = spec.split("=", 1)
            fmt, root = rest.split(":", 1)
            result["datasets"][name] = dump_frames(fmt, root)
    elif len(argv) == 4 and argv[0] == "compare":
        result = {"datumaro": dm.__version__, **compare(argv[1], argv[2], argv[3])}
    else:
        raise SystemExit(__doc__)
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
