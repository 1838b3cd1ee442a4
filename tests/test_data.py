import numpy as np
import pytest
import torch
from PIL import Image

from squeezenet.data import default_preprocess, find_images, imagenet_classes, load_rgb, preprocess
from squeezenet.models import build_model


def test_class_list_is_the_standard_order():
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert [c.index for c in classes] == list(range(1000))
    assert [c.wnid for c in classes] == sorted(c.wnid for c in classes)
    assert (classes[0].wnid, classes[0].name) == ("n01440764", "tench")
    assert classes[999].wnid == "n15075141"


def test_flat_sample_folder_labels(imagenet_samples):
    images = find_images(imagenet_samples)
    assert len(images.paths) >= 500  # the held-out half may or may not be present
    wnid_index = {c.wnid: c.index for c in imagenet_classes()}
    for path, label in zip(images.paths, images.labels):
        assert label == wnid_index[path.name.split("_", 1)[0]]
    assert any("'" in p.name for p in images.paths)  # yellow_lady's_slipper survives


def test_image_folder_by_wnid_and_by_name(tmp_path, imagenet_samples):
    photos = sorted(imagenet_samples.glob("*.JPEG"))[:3]
    for photo in photos:
        wnid = photo.name.split("_", 1)[0]
        (tmp_path / "by_wnid" / wnid).mkdir(parents=True)
        (tmp_path / "by_wnid" / wnid / photo.name).symlink_to(photo)
    images = find_images(tmp_path / "by_wnid")
    wnid_index = {c.wnid: c.index for c in imagenet_classes()}
    assert list(images.labels) == [wnid_index[p.name.split("_")[0]] for p in photos]
    for name in ("cat", "ant"):
        (tmp_path / "named" / name).mkdir(parents=True)
        (tmp_path / "named" / name / "a.jpg").symlink_to(photos[0])
    named = find_images(tmp_path / "named")
    assert named.class_names == ("ant", "cat") and list(named.labels) == [0, 1]


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(FileNotFoundError):
        find_images(tmp_path / "nope")
    with pytest.raises(ValueError, match="no images"):
        find_images(tmp_path)


def test_grayscale_and_alpha_become_rgb(tmp_path):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((10, 12), 77, np.uint8), "L").save(gray)
    assert load_rgb(gray).mode == "RGB"
    alpha = tmp_path / "alpha.png"
    Image.fromarray(np.zeros((4, 4, 4), np.uint8), "RGBA").save(alpha)  # fully transparent
    assert np.asarray(load_rgb(alpha)).min() == 255  # composited on white


def test_text_file_is_not_an_image(tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("hello")
    with pytest.raises(ValueError, match="not a readable image"):
        load_rgb(fake)


def test_presets(imagenet_samples):
    photo = load_rgb(sorted(imagenet_samples.glob("*.JPEG"))[0])
    caffe = preprocess("caffe")(photo)
    torchvision_input = preprocess("torchvision")(photo)
    assert caffe.shape == (3, 227, 227) and torchvision_input.shape == (3, 224, 224)
    # Caffe input is BGR on the 0..255 scale minus the mean: values far outside [-3, 3].
    assert caffe.abs().max() > 50 and torchvision_input.abs().max() < 3
    raw = np.asarray(photo.resize((256, 256), Image.BILINEAR), dtype=np.float32)[14:241, 14:241]
    blue_mean = raw[..., 2].mean() - 104.0
    assert abs(float(caffe[0].mean()) - blue_mean) < 1.5  # channel 0 is blue
    with pytest.raises(ValueError, match="preset"):
        preprocess("opencv")


def test_default_preprocess_follows_the_model(published_model):
    assert default_preprocess(published_model) == "caffe"
    assert default_preprocess(build_model("squeezenet1_1")) == "torchvision"
    assert default_preprocess(build_model("squeezenet_cifar")) == "cifar"
    assert isinstance(preprocess("cifar")(Image.new("RGB", (32, 32))), torch.Tensor)
