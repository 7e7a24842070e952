"""PASCAL VOC XML (one file per photo, as LabelImg and CVAT write it): reading and writing.

    <annotation>
      <folder>photos</folder> <filename>a.jpg</filename>
      <size><width>640</width><height>480</height><depth>3</depth></size>
      <object>
        <name>acme</name> <difficult>0</difficult> <truncated>0</truncated>
        <bndbox><xmin>10</xmin><ymin>20</ymin><xmax>110</xmax><ymax>70</ymax></bndbox>
      </object>
    </annotation>

Coordinates are read as pixel edges (box width xmax - xmin), as the OD API's own converter
(create_pascal_tf_record) and CVAT read them; an annotation in the VOC devkit's 1-based
inclusive convention is then off by at most one pixel. The photo is `filename` inside
`images_dir`, or beside the XML file when no images_dir is given (`path`, an absolute path on
the labelling machine, is not used).

XML is untrusted input. It is parsed with lxml through a hardened parser: no entity
expansion (resolve_entities=False), no DTD loading, no network, no huge trees, and at most
MAX_XML_BYTES read. A document with a DOCTYPE is refused, naming what it declares: entities
(an XML external entity reading a local file, a billion-laughs expansion) or an external DTD
(a remote DTD fetched over the network). Nothing outside the file is ever read.
"""

from __future__ import annotations

import math
import os

from synth.importing.records import AnnotationError, LabelledImage, LabelledObject, Parsed, Problem

MAX_XML_BYTES = 1 << 20  # a VOC file is a few kB; more is refused unread


def _parser():
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_pis=True, remove_comments=True)


def read_xml(path: str, max_bytes: int = MAX_XML_BYTES):
    """The root element of the XML file `path`, parsed safely (see the module docstring);
    AnnotationError naming the file for anything unsafe or malformed."""
    from lxml import etree

    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise AnnotationError(f"{path!r} is {size:,} bytes, above the limit of {max_bytes:,} for an "
                                  "annotation file; refused unread")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise AnnotationError(f"{path!r} cannot be read: {exc.strerror}") from None
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise AnnotationError(f"{path!r} is not well-formed XML: {exc}") from None
    if root is None:
        raise AnnotationError(f"{path!r} holds no XML element")
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.system_url or info.public_id:
        dtd = info.internalDTD
        entities = [e.name for e in dtd.iterentities()] if dtd is not None else []
        if entities:
            what = (f"declares XML entities ({', '.join(entities[:5])}): external entities (XXE) and "
                    "entity expansion (billion laughs) are refused")
        elif info.system_url:
            what = f"names an external DTD ({info.system_url!r}), which is never fetched"
        else:
            what = "has a DOCTYPE declaration"
        raise AnnotationError(f"{path!r} {what}; annotation files must be plain XML without a DOCTYPE, "
                              "and nothing outside the file is read")
    return root


def _text(el, tag: str, where: str, required: bool = True) -> str | None:
    found = el.find(tag)
    if found is None or found.text is None or not found.text.strip():
        if required:
            raise AnnotationError(f"{where}: <{tag}> is missing or empty")
        return None
    return found.text.strip()


def _number(el, tag: str, where: str) -> float:
    text = _text(el, tag, where)
    try:
        v = float(text)
    except ValueError:
        raise AnnotationError(f"{where}: <{tag}> = {text!r} is not a number") from None
    if not math.isfinite(v):
        raise AnnotationError(f"{where}: <{tag}> = {text!r} is not a finite number")
    return v


def _flag(el, tag: str, where: str) -> bool:
    text = _text(el, tag, where, required=False)
    if text is None:
        return False
    if text not in ("0", "1"):
        raise AnnotationError(f"{where}: <{tag}> = {text!r} must be 0 or 1")
    return text == "1"


def parse_voc(root, xml_path: str, images_dir: str | None = None) -> LabelledImage:
    """A LabelledImage from a parsed <annotation> element."""
    if root.tag != "annotation":
        raise AnnotationError(f"{xml_path!r}: the root element is <{root.tag}>, not <annotation>")
    filename = _text(root, "filename", repr(xml_path))
    if os.path.basename(filename) != filename or filename in (".", ".."):
        raise AnnotationError(f"{xml_path!r}: <filename> = {filename!r} must be a file name, not a path")
    folder = images_dir if images_dir is not None else os.path.dirname(xml_path)
    width = height = None
    size = root.find("size")
    if size is not None and size.find("width") is not None:
        w, h = _number(size, "width", f"{xml_path!r} <size>"), _number(size, "height", f"{xml_path!r} <size>")
        if w > 0 and h > 0:  # some tools write 0 when they did not know the size
            width, height = int(w), int(h)
    objects = []
    for k, obj in enumerate(root.findall("object")):
        where = f"{xml_path!r} <object> #{k}"
        name = _text(obj, "name", where)
        bnd = obj.find("bndbox")
        if bnd is None:
            raise AnnotationError(f"{where} ({name!r}): <bndbox> is missing")
        box = tuple(_number(bnd, t, f"{where} ({name!r}) <bndbox>") for t in ("xmin", "ymin", "xmax", "ymax"))
        objects.append(LabelledObject(name, box, _flag(obj, "difficult", where), _flag(obj, "truncated", where)))
    return LabelledImage(xml_path, os.path.join(folder, filename), filename, width, height, tuple(objects))


def xml_files(path: str) -> list[str]:
    """The .xml files of a folder (sorted, not recursive), or [path] for a file."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(".xml"))
        if not files:
            raise AnnotationError(f"--input folder {path!r} holds no .xml files")
        return files
    if not os.path.isfile(path):
        raise AnnotationError(f"--input {path!r} does not exist")
    return [path]


def parse_voc_input(path: str, images_dir: str | None = None, max_bytes: int = MAX_XML_BYTES) -> Parsed:
    """Every VOC file of `path` (a folder or one .xml file): the usable images, and one Problem
    per file that cannot be used."""
    images, problems = [], []
    for f in xml_files(path):
        try:
            images.append(parse_voc(read_xml(f, max_bytes), f, images_dir))
        except AnnotationError as exc:
            problems.append(Problem(f, str(exc)))
    return Parsed(images, problems, {})


def voc_xml(image_path: str, height: int, width: int, objects: list[dict]) -> bytes:
    """A PASCAL VOC annotation for `image_path`, as LabelImg writes one: objects are {"name",
    "box": normalised [ymin, xmin, ymax, xmax], optional "score"}; coordinates are rounded to
    whole pixels (LabelImg and CVAT open such files; the score goes into a <score> element they
    ignore)."""
    from lxml import etree

    from synth import boxes as boxlib

    root = etree.Element("annotation")
    etree.SubElement(root, "folder").text = os.path.basename(os.path.dirname(os.path.abspath(image_path)))
    etree.SubElement(root, "filename").text = os.path.basename(image_path)
    etree.SubElement(root, "path").text = os.path.abspath(image_path)
    src = etree.SubElement(root, "source")
    etree.SubElement(src, "database").text = "tfod-synth mine"
    size = etree.SubElement(root, "size")
    for tag, v in (("width", width), ("height", height), ("depth", 3)):
        etree.SubElement(size, tag).text = str(int(v))
    etree.SubElement(root, "segmented").text = "0"
    for o in objects:
        el = etree.SubElement(root, "object")
        etree.SubElement(el, "name").text = o["name"]
        etree.SubElement(el, "pose").text = "Unspecified"
        etree.SubElement(el, "truncated").text = "0"
        etree.SubElement(el, "difficult").text = "0"
        if "score" in o:
            etree.SubElement(el, "score").text = f"{float(o['score']):.4f}"
        y0, x0, y1, x1 = boxlib.to_pixels(o["box"], height, width)
        x0 = min(width - 1, max(0, int(math.floor(x0 + 1e-6))))
        y0 = min(height - 1, max(0, int(math.floor(y0 + 1e-6))))
        x1, y1 = min(width, int(math.ceil(x1 - 1e-6))), min(height, int(math.ceil(y1 - 1e-6)))
        bnd = etree.SubElement(el, "bndbox")
        for tag, v in (("xmin", x0), ("ymin", y0), ("xmax", max(x1, x0 + 1)), ("ymax", max(y1, y0 + 1))):
            etree.SubElement(bnd, tag).text = str(v)
    return etree.tostring(root, pretty_print=True, encoding="utf-8", xml_declaration=False)
