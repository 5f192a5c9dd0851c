"""fit(): early stopping, overfitting warning, progress bar, reproducibility,
checkpoints; and the textbook XOR network and single neuron."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

from pyengine import train as T
from pyengine.train.data import neuron_data, xor_data


def _memorizer(seed=0):
    """A model and data that overfit: random labels, so validation loss rises."""
    rng = np.random.default_rng(seed)
    X, Xv = rng.normal(size=(40, 10)).astype(np.float32), rng.normal(size=(40, 10)).astype(np.float32)
    y, yv = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    T.seed(seed)
    model = T.Sequential(T.Linear(10, 64), T.ReLU(), T.Linear(64, 3))
    return model, X, y, Xv, yv


def test_early_stopping_restores_best_weights():
    model, X, y, Xv, yv = _memorizer()
    loss = T.SoftmaxCrossEntropy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", T.OverfittingWarning)
        hist = T.fit(model, loss, T.Adam(model.parameters(), lr=0.01), X, y, Xv, yv, epochs=50, batch_size=8,
                     patience=3, quiet=True)
    assert hist.stopped_early and len(hist.epoch) < 50
    best = int(np.argmin(hist.val_loss))
    assert hist.best_epoch == best + 1
    assert hist.best_epoch < len(hist.epoch)  # the last epoch was worse: restoring matters
    assert hist.val_loss[-1] > hist.val_loss[best]
    val_loss, _ = T.evaluate(model, loss, Xv, yv)
    assert val_loss == pytest.approx(hist.val_loss[best], rel=1e-6)


def test_overfitting_warning():
    model, X, y, Xv, yv = _memorizer(1)
    with pytest.warns(T.OverfittingWarning, match="overfitting"):
        hist = T.fit(model, T.SoftmaxCrossEntropy(), T.Adam(model.parameters(), lr=0.01), X, y, Xv, yv,
                     epochs=30, batch_size=8, quiet=True)
    assert hist.overfit_epochs


def test_no_overfitting_warning_on_learnable_data():
    X, y = neuron_data(200, 5)
    Xv, yv = neuron_data(200, 6)
    T.seed(0)
    model = T.Sequential(T.Linear(2, 1), T.Sigmoid())
    with warnings.catch_warnings():
        warnings.simplefilter("error", T.OverfittingWarning)
        T.fit(model, T.BCE(), T.SGD(model.parameters(), lr=0.5), X, y, Xv, yv, epochs=10, quiet=True)


def test_fit_is_reproducible_from_seed():
    def run():
        model, X, y, Xv, yv = _memorizer(2)
        model = T.Sequential(model[0], model[1], T.Dropout(0.3), model[2])
        T.fit(model, T.SoftmaxCrossEntropy(), T.SGD(model.parameters(), lr=0.05, momentum=0.9), X, y,
              epochs=3, batch_size=7, seed=11, quiet=True, augment=lambda xb, rng: xb + rng.normal(size=xb.shape) * 0.01)
        return [p.data.copy() for p in model.parameters()]
    a, b = run(), run()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.filterwarnings("ignore::pyengine.train.loop.OverfittingWarning")
def test_progress_bar_and_quiet(capsys):
    model, X, y, Xv, yv = _memorizer(3)
    stream = io.StringIO()
    T.fit(model, T.SoftmaxCrossEntropy(), T.SGD(model.parameters(), lr=0.01), X, y, Xv, yv, epochs=2,
          batch_size=8, stream=stream)
    text = stream.getvalue()
    assert "epoch 2/2" in text and "val loss" in text and "#" in text
    T.fit(model, T.SoftmaxCrossEntropy(), T.SGD(model.parameters(), lr=0.01), X, y, epochs=1, quiet=True)
    T.fit(model, T.SoftmaxCrossEntropy(), T.SGD(model.parameters(), lr=0.01), X, y, epochs=1)
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("epoch 1/1 train loss") == 1  # default: stderr, quiet: nothing


def test_history_csv(tmp_path):
    model, X, y, Xv, yv = _memorizer(4)
    hist = T.fit(model, T.SoftmaxCrossEntropy(), T.SGD(model.parameters(), lr=0.01), X, y, Xv, yv, epochs=3,
                 quiet=True)
    hist.to_csv(tmp_path / "c.csv")
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,train_acc,val_loss,val_acc,lr" and len(lines) == 4


def test_history_csv_without_validation_keeps_every_epoch(tmp_path):
    model, X, y, _, _ = _memorizer(4)
    hist = T.fit(model, T.SoftmaxCrossEntropy(), T.SGD(model.parameters(), lr=0.01), X, y, epochs=3, quiet=True)
    hist.to_csv(tmp_path / "c.csv")
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[3].split(",")[3:5] == ["", ""]  # val columns empty, rows kept


def test_checkpoint_round_trip(tmp_path):
    T.seed(5)
    model = T.Sequential(T.Linear(3, 4), T.BatchNorm(4), T.ReLU(), T.Linear(4, 2))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 3)).astype(np.float32), rng.integers(0, 2, 16)
    opt = T.Adam(model.parameters(), lr=0.01)
    path = tmp_path / "ckpt"  # no .npz suffix: written exactly there
    T.fit(model, T.SoftmaxCrossEntropy(), opt, X, y, epochs=2, batch_size=4, quiet=True, checkpoint=path)
    assert path.exists()

    T.seed(99)
    model2 = T.Sequential(T.Linear(3, 4), T.BatchNorm(4), T.ReLU(), T.Linear(4, 2))
    opt2 = T.Adam(model2.parameters(), lr=0.01)
    meta = T.load_checkpoint(path, model2, opt2)
    assert meta == {"epoch": 2}
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(model2.state_dict()[k], v, err_msg=k)
    assert opt2.steps == opt.steps == 8
    # Same state: one more identical step gives identical weights.
    for m, o in ((model, opt), (model2, opt2)):
        T.fit(m, T.SoftmaxCrossEntropy(), o, X, y, epochs=1, batch_size=4, seed=3, quiet=True)
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_load_state_dict_rejects_wrong_shape():
    a, b = T.Linear(3, 2), T.Linear(3, 4)
    with pytest.raises(ValueError, match="shape"):
        b.load_state_dict(a.state_dict())


@pytest.mark.parametrize("hidden", [T.Tanh, T.Sigmoid])
def test_xor_221(hidden):
    X, y = xor_data()
    T.seed(1)  # 2-2-1 XOR has local minima for some initializations: a fixed seed
    model = T.Sequential(T.Linear(2, 2, init="xavier"), hidden(), T.Linear(2, 1, init="xavier"), T.Sigmoid())
    hist = T.fit(model, T.BCE(), T.SGD(model.parameters(), lr=1.0, momentum=0.9), X, y, epochs=1500,
                 batch_size=4, quiet=True)
    out = T.predict(model, X)
    np.testing.assert_array_equal(out > 0.5, y > 0.5)
    assert hist.train_loss[-1] < 0.05


def test_single_neuron_learns_linear_rule():
    X, y = neuron_data(300, 10)
    Xt, yt = neuron_data(300, 11)
    T.seed(0)
    model = T.Sequential(T.Linear(2, 1), T.Sigmoid())
    T.fit(model, T.BCE(), T.SGD(model.parameters(), lr=0.5, momentum=0.9), X, y, epochs=100, batch_size=32,
          quiet=True)
    _, acc = T.evaluate(model, T.BCE(), Xt, yt)
    assert acc >= 0.98
    w = model[0].weight.data.ravel()
    assert w[0] > 0 > w[1] and abs(w[0] / w[1] + 2) < 0.5  # direction of the rule 2*x0 - x1


def test_fit_checks_arguments():
    model = T.Linear(2, 1)
    with pytest.raises(ValueError, match="targets"):
        T.fit(model, T.MSE(), T.SGD(model.parameters()), np.zeros((3, 2)), np.zeros(2), quiet=True)
    with pytest.raises(ValueError, match="validation"):
        T.fit(model, T.MSE(), T.SGD(model.parameters()), np.zeros((3, 2)), np.zeros(3), patience=2, quiet=True)
