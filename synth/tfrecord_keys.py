"""TFRecord feature keys, in one place for the writer, the readers and the tests.

These are exactly the keys the OD API's TfExampleDecoder reads
(object_detection/core/standard_fields.py, TfExampleFields)."""

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_FILENAME = "image/filename"
IMAGE_SOURCE_ID = "image/source_id"
IMAGE_KEY_SHA256 = "image/key/sha256"
BBOX_XMIN = "image/object/bbox/xmin"
BBOX_XMAX = "image/object/bbox/xmax"
BBOX_YMIN = "image/object/bbox/ymin"
BBOX_YMAX = "image/object/bbox/ymax"
CLASS_TEXT = "image/object/class/text"
CLASS_LABEL = "image/object/class/label"
# Only with write_masks: one PNG per object (read with the OD API's mask_type: PNG_MASKS).
OBJECT_MASK = "image/object/mask"
# Only in imported photos (synth.importing): PASCAL VOC's flags, int64 0/1 per object. The OD API's
# decoder reads `difficult` (groundtruth_difficult: such boxes are ignored by its VOC-style evaluation).
OBJECT_DIFFICULT = "image/object/difficult"
OBJECT_TRUNCATED = "image/object/truncated"

# Every key a tfod-synth record carries.
ALL_KEYS = (
    IMAGE_ENCODED, IMAGE_FORMAT, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_FILENAME, IMAGE_SOURCE_ID,
    IMAGE_KEY_SHA256, BBOX_XMIN, BBOX_XMAX, BBOX_YMIN, BBOX_YMAX, CLASS_TEXT, CLASS_LABEL,
)
