"""PNG pictures of training (pyengine.train.plots): learning curves and
first-layer filters, as the zoo scripts save them."""
import struct
from pathlib import Path

import numpy as np
import pytest

from pyengine.train import plots

pytestmark = pytest.mark.skipif(not plots.available(), reason="matplotlib not installed")
MODELS = Path(__file__).resolve().parent.parent / "models"


def _png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def test_curves_png_from_csv_with_and_without_validation(tmp_path):
    csv_path = tmp_path / "m_curves.csv"
    csv_path.write_text("epoch,train_loss,train_acc,val_loss,val_acc,lr\n"
                        "1,2.0,0.3,2.1,0.25,0.1\n2,1.0,0.6,,,0.1\n3,0.5,0.8,,,0.05\n")
    cols = plots.read_curves(csv_path)
    np.testing.assert_array_equal(cols["train_loss"], [2.0, 1.0, 0.5])
    assert np.isnan(cols["val_loss"][1:]).all() and cols["val_loss"][0] == 2.1
    w, h = _png_size(plots.plot_curves(csv_path, tmp_path / "m.png", title="m"))
    assert w > h > 100


def test_curves_of_no_epochs_is_an_error(tmp_path):
    csv_path = tmp_path / "empty.csv"
    csv_path.write_text("epoch,train_loss,train_acc,val_loss,val_acc,lr\n")
    with pytest.raises(ValueError, match="no epochs"):
        plots.plot_curves(csv_path, tmp_path / "e.png")


@pytest.mark.parametrize("cout", [1, 5, 32])
def test_filters_grid(tmp_path, cout):
    w = np.random.default_rng(cout).normal(size=(cout, 3, 3, 3)).astype(np.float32)
    width, height = _png_size(plots.plot_filters(w, tmp_path / "f.png"))
    assert width > 0 and height > 0


def test_filters_need_conv_weights(tmp_path):
    with pytest.raises(ValueError, match=r"\[Cout, Cin, kh, kw\]"):
        plots.plot_filters(np.zeros((4, 9)), tmp_path / "f.png")


def test_first_conv_weights_of_the_zoo_cnn():
    w = plots.first_conv_weights(MODELS / "digits_cnn.onnx")
    assert w.shape == (32, 1, 3, 3) and np.abs(w).sum() > 0
    with pytest.raises(ValueError, match="no Conv"):
        plots.first_conv_weights(MODELS / "digits_mlp.onnx")
