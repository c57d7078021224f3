"""Float networks (lockstep/nn.py), numpy training (lockstep/train.py) and post-training
quantisation (lockstep/quantize.py) on the scikit-learn 8x8 digits."""

import time

import numpy as np
import pytest

from lockstep import nn
from lockstep.qmodel import ModelError, QModel
from lockstep.quantize import activation_qparams, quantize
from lockstep.train import (
    _backward,
    _forward,
    _softmax_xent,
    load_digits_split,
    train_cnn,
    train_mlp,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    x_train, y_train, _, _ = digits
    models = {}
    for kind, train in (("mlp", train_mlp), ("cnn", train_cnn)):
        start = time.perf_counter()
        models[kind] = train(x_train, y_train, seed=0)
        print(f"{kind}: trained in {time.perf_counter() - start:.2f} s")
    return models


def int8_accuracy(qmodel, x, y):
    out = qmodel.reference(qmodel.input.quantize(x))
    return float(np.mean(np.argmax(out, axis=1) == y))


def requant_scales(qmodel):
    return [q.scale * layer.weight_scale / layer.output.scale
            for layer, q in zip(qmodel.layers, qmodel.quant_params(), strict=False)
            if hasattr(layer, "weight_scale")]


def test_digits_split(digits):
    x_train, y_train, x_test, y_test = digits
    assert x_train.shape == (1347, 8, 8, 1) and x_test.shape == (450, 8, 8, 1)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert set(np.unique(y_test)) == set(range(10))
    again = load_digits_split(seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(digits, again, strict=True))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_int8_accuracy_close_to_float(trained, digits, kind):
    _, _, x_test, y_test = digits
    model = trained[kind]
    qmodel = quantize(model, digits[0], name=f"digits_{kind}")
    float_acc = float(np.mean(model.predict(x_test) == y_test))
    int8_acc = int8_accuracy(qmodel, x_test, y_test)
    print(f"{kind}: float {100 * float_acc:.2f}%  int8 {100 * int8_acc:.2f}%")
    assert float_acc >= (0.96 if kind == "mlp" else 0.97)
    assert abs(int8_acc - float_acc) <= 0.01
    # predict() (float in, float out) picks the same classes as the int8 outputs
    assert np.mean(np.argmax(qmodel.predict(x_test), axis=1) == y_test) == int8_acc


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_reference_agrees_with_float_forward(trained, digits, kind):
    x_train, _, x_test, _ = digits
    model = trained[kind]
    qmodel = quantize(model, x_train)
    out_q = qmodel.output
    want = np.clip(model.forward(x_test), out_q.dequantize(-128), out_q.dequantize(127))
    steps = np.abs(qmodel.predict(x_test) - want) / out_q.scale
    print(f"{kind}: output error in steps: max {steps.max():.2f}, mean {steps.mean():.2f}")
    assert steps.max() <= 4.0
    assert steps.mean() <= 1.0


def test_quantisation_parameters(trained, digits):
    qmodel = quantize(trained["cnn"], digits[0])
    # digits in [0, 1]: the input gets 1/255 and zero point -128 from the data
    assert qmodel.input.scale == pytest.approx(1 / 255) and qmodel.input.zero_point == -128
    assert [type(layer).__name__ for layer in qmodel.layers] == [
        "Conv2d", "Conv2d", "Flatten", "Dense"]
    assert [getattr(layer, "activation", None) for layer in qmodel.layers] == [
        "relu", "relu", None, "none"]
    for layer in qmodel.layers[:2]:
        assert layer.output.zero_point == -128        # a ReLU output starts at 0
    for layer, float_layer in ((qmodel.layers[0], trained["cnn"].layers[0]),
                               (qmodel.layers[3], trained["cnn"].layers[5])):
        assert np.abs(layer.weight).max() == 127      # symmetric per channel, full range
        w = float_layer.weight.reshape(-1, float_layer.weight.shape[-1])
        np.testing.assert_allclose(layer.weight_scale, np.abs(w).max(axis=0) / 127)
    assert all(s.max() < 1 for s in requant_scales(qmodel))


def test_relu6_is_fused():
    rng = np.random.default_rng(1)
    model = nn.Sequential((4,), [nn.Dense(rng.normal(size=(4, 3)), np.zeros(3)), nn.ReLU6(),
                                 nn.Dense(rng.normal(size=(3, 2)), np.zeros(2))])
    x = rng.normal(0, 3, size=(200, 4))
    qmodel = quantize(model, x)
    assert qmodel.layers[0].activation == "relu6"
    assert qmodel.layers[0].output.zero_point == -128
    steps = np.abs(qmodel.predict(x) - model.forward(x)) / qmodel.output.scale
    assert steps.max() <= 4


def test_narrow_output_is_widened_to_a_scale_below_one():
    # Two inputs that are always nearly equal, weights +1 and -1: the output range is tiny,
    # far below one input step times one weight step.
    model = nn.Sequential((2,), [nn.Dense([[1.0], [-1.0]], [0.0])])
    a = np.linspace(-1, 1, 50)
    x = np.stack([a, a + 1e-4], axis=1)
    qmodel = quantize(model, x)
    scales = requant_scales(qmodel)
    assert 0.99 < scales[0].max() < 1
    qmodel.layers[0].requant(qmodel.input)            # the vector unit can do it
    # the inputs differ by less than an input step: 0, or one input step after rounding
    assert np.abs(qmodel.predict(x) - model.forward(x)).max() <= qmodel.input.scale * 1.01
    # a layer that outputs 0 throughout calibration
    model = nn.Sequential((2,), [nn.Dense([[0.0], [0.0]], [0.0])])
    assert np.all(quantize(model, x).predict(x) == 0)


def test_dead_channel_with_tiny_weights():
    # A ReLU unit that never fires: weight decay left weights of ~1e-12 and a small bias.
    w = np.array([[0.5, 1e-12], [-0.25, -1e-12]])
    model = nn.Sequential((2,), [nn.Dense(w, [0.1, -0.003]), nn.ReLU(),
                                 nn.Dense([[1.0], [1.0]], [0.0])])
    x = np.random.default_rng(2).uniform(0, 1, size=(100, 2))
    qmodel = quantize(model, x)
    assert np.all(np.abs(qmodel.layers[0].bias) <= 2 ** 24)
    steps = np.abs(qmodel.predict(x) - model.forward(x)) / qmodel.output.scale
    assert steps.max() <= 3


def test_activation_qparams_range_includes_zero():
    q = activation_qparams(np.array([2.0, 3.0]))
    assert q.zero_point == -128 and q.scale == pytest.approx(3 / 255)
    q = activation_qparams(np.array([-3.0, -1.0]))
    assert q.zero_point == 127 and q.scale == pytest.approx(3 / 255)
    q = activation_qparams(np.array([-1.0, 1.0]))
    assert q.dequantize(q.quantize(0.0)) == 0.0
    q = activation_qparams(np.array([-5.0, 1.0]), "relu")
    assert q.zero_point == -128 and q.scale == pytest.approx(1 / 255)
    q = activation_qparams(np.array([0.0, 9.0]), "relu6")
    assert q.scale == pytest.approx(6 / 255)


# -- refusals ---------------------------------------------------------------------------------

def small_cnn(rng=None):
    rng = rng or np.random.default_rng(0)
    return [nn.Conv2d(rng.normal(size=(3, 3, 1, 4)), np.zeros(4)), nn.ReLU(), nn.Flatten(),
            nn.Dense(rng.normal(size=(6 * 6 * 4, 10)), np.zeros(10))]


@pytest.mark.parametrize("layers, where", [
    (lambda c: [nn.ReLU()] + c, "layer 0: ReLU after the input"),
    (lambda c: c[:3] + [nn.ReLU()] + c[3:], "layer 3: ReLU after a Flatten"),
    (lambda c: c[:2] + [nn.ReLU6()] + c[2:], "layer 2: ReLU6 after a ReLU"),
])
def test_relu_not_after_dense_or_conv_is_refused(layers, where):
    model = nn.Sequential((8, 8, 1), layers(small_cnn()))
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1))
    model.forward(x)                                  # a fine float model...
    with pytest.raises(ModelError, match=where):      # ...that the int8 IR cannot express
        quantize(model, x)


@pytest.mark.parametrize("build, message", [
    (lambda: nn.Sequential((8, 8, 1), [nn.Dense(np.zeros((64, 10)), np.zeros(10))]),
     r"layer 0: dense 64->10 expects 64 input features, gets shape \(8, 8, 1\) "
     r"\(add a Flatten first\)"),
    (lambda: nn.Sequential((8, 8, 3), small_cnn()), "layer 0: conv2d 3x3 expects an HWC image "
     "with 1 channels"),
    (lambda: nn.Sequential((2, 2, 1), small_cnn()), "does not fit a 2x2 image"),
    (lambda: nn.Sequential((8, 8, 1), small_cnn()[:3] + [nn.Dense(np.zeros((100, 10)),
                                                                 np.zeros(10))]),
     "layer 3: dense 100->10 expects 100 input features, gets shape"),
    (lambda: nn.Dense(np.zeros((4, 3)), np.zeros(4)), r"bias must have shape \(3,\)"),
    (lambda: nn.Dense(np.zeros(4), np.zeros(4)), "must be 2-D"),
    (lambda: nn.Conv2d(np.zeros((3, 3, 4)), np.zeros(4)), "must be 4-D"),
    (lambda: nn.Conv2d(np.zeros((3, 3, 1, 4)), np.zeros(3)), r"bias must have shape \(4,\)"),
    (lambda: nn.Dense(np.full((2, 2), np.nan), np.zeros(2)), "must be finite"),
    (lambda: nn.Sequential((4,), []), "at least one layer"),
    (lambda: nn.Sequential((4,), [np.zeros(3)]), "layer 0 is a ndarray"),
])
def test_shape_mismatches_are_refused(build, message):
    with pytest.raises(ModelError, match=message):
        build()


def test_wrong_input_shapes_are_refused():
    model = nn.Sequential((8, 8, 1), small_cnn())
    with pytest.raises(ModelError, match=r"input must have shape \[batch, 8, 8, 1\], "
                                         r"not \[4, 64\]"):
        model.forward(np.zeros((4, 64)))
    with pytest.raises(ModelError, match="input must have shape"):
        quantize(model, np.zeros((4, 8, 8, 2)))
    with pytest.raises(ModelError, match="input must have shape"):
        quantize(model, np.zeros((8, 8, 1)))           # a single image without a batch axis


@pytest.mark.parametrize("calibration", [np.zeros((0, 8, 8, 1)), [], np.zeros(0)])
def test_empty_calibration_data_is_refused(calibration):
    model = nn.Sequential((8, 8, 1), small_cnn())
    with pytest.raises(ModelError, match="calibration data is empty"):
        quantize(model, calibration)


def test_other_refusals():
    model = nn.Sequential((8, 8, 1), small_cnn())
    with pytest.raises(ModelError, match="must be finite"):
        quantize(model, np.full((2, 8, 8, 1), np.inf))
    with pytest.raises(ModelError, match="takes a lockstep.nn.Sequential"):
        quantize(small_cnn(), np.zeros((2, 8, 8, 1)))
    with pytest.raises(ModelError, match="HWC images"):
        train_cnn(np.zeros((4, 64)), np.zeros(4, dtype=int))
    with pytest.raises(ModelError, match="labels must be 4 non-negative integers"):
        train_mlp(np.zeros((4, 64)), np.zeros(3, dtype=int))


# -- training ---------------------------------------------------------------------------------

@pytest.mark.parametrize("train", [train_mlp, train_cnn])
def test_training_is_deterministic(digits, train):
    x, y = digits[0][:300], digits[1][:300]
    a, b = train(x, y, epochs=3, seed=5), train(x, y, epochs=3, seed=5)
    c = train(x, y, epochs=3, seed=6)
    params = [(la, lb, lc) for la, lb, lc in zip(a.layers, b.layers, c.layers, strict=True)
              if isinstance(la, (nn.Dense, nn.Conv2d))]
    for la, lb, lc in params:
        assert np.array_equal(la.weight, lb.weight) and np.array_equal(la.bias, lb.bias)
        assert not np.array_equal(la.weight, lc.weight)


def test_conv_forward_matches_direct_loops():
    rng = np.random.default_rng(3)
    conv = nn.Conv2d(rng.normal(size=(3, 2, 2, 5)), rng.normal(size=5))
    x = rng.normal(size=(2, 6, 5, 2))
    want = np.zeros((2, 4, 4, 5))
    for y in range(4):
        for xx in range(4):
            patch = x[:, y:y + 3, xx:xx + 2, :]
            want[:, y, xx, :] = np.einsum("bijc,ijco->bo", patch, conv.weight) + conv.bias
    np.testing.assert_allclose(conv.forward(x), want, atol=1e-12)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(4)
    model = nn.Sequential((5, 5, 2), [
        nn.Conv2d(rng.normal(size=(3, 3, 2, 3)), rng.normal(size=3) * 0.1), nn.ReLU(),
        nn.Conv2d(rng.normal(size=(2, 2, 3, 2)), rng.normal(size=2) * 0.1), nn.ReLU6(),
        nn.Flatten(), nn.Dense(rng.normal(size=(8, 4)), rng.normal(size=4))])
    x, y = rng.normal(size=(3, 5, 5, 2)), np.array([0, 3, 1])

    def loss():
        return _softmax_xent(model.forward(x), y)[0]

    logits, caches = _forward(model, x)
    np.testing.assert_allclose(logits, model.forward(x))
    grads = _backward(model, caches, _softmax_xent(logits, y)[1])
    assert len(grads) == 6
    for param, grad in grads:
        for idx in list(np.ndindex(param.shape))[:12]:
            keep = param[idx]
            param[idx] = keep + 1e-6
            up = loss()
            param[idx] = keep - 1e-6
            down = loss()
            param[idx] = keep
            assert grad[idx] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-7)


def test_quantised_model_is_a_qmodel(trained, digits):
    qmodel = quantize(trained["mlp"], digits[0][:50], name="mlp")
    assert isinstance(qmodel, QModel) and qmodel.name == "mlp"
    assert qmodel.input_shape == (8, 8, 1) and qmodel.output_shape == (10,)
    assert [layer.name for layer in qmodel.layers] == ["flatten0", "dense0", "dense1"]
