"""Training small float networks in plain numpy, for the 8x8 digits of scikit-learn.

:func:`fit` trains any :class:`~lockstep.nn.Sequential` of Dense, Conv2d (im2col), ReLU,
ReLU6 and Flatten layers with softmax cross-entropy, Adam and shuffled minibatches. Everything
random (initial weights, the order of the minibatches) comes from one seeded generator, so the
same seed gives the same weights. :func:`train_mlp` and :func:`train_cnn` build and train the
two networks of the examples; :func:`load_digits_split` gives the data (scikit-learn's bundled
copy, no download).
"""

from contextlib import nullcontext

import numpy as np

from .nn import Conv2d, Dense, Flatten, ReLU, ReLU6, Sequential, col2im, im2col
from .qmodel import ModelError

__all__ = ["load_digits_split", "train_mlp", "train_cnn", "fit", "accuracy"]


def load_digits_split(seed=0, test_size=0.25):
    """(x_train, y_train, x_test, y_test): the 1797 8x8 digits as float images [N, 8, 8, 1]
    in [0, 1] (the raw values are 0..16), labels int64, split stratified with ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float64)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed)
    return x_train, y_train, x_test, y_test


def accuracy(model, x, y):
    """Fraction of ``x`` that ``model`` classifies as ``y``."""
    return float(np.mean(model.predict(x) == np.asarray(y)))


def _he(rng, shape, fan_in):
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def train_mlp(x, y, hidden=(32,), epochs=60, seed=0, lr=3e-3, batch_size=32,
              weight_decay=1e-4):
    """A perceptron: (Flatten if ``x`` holds images) -> Dense+ReLU per ``hidden`` width ->
    Dense to the classes."""
    x, y, n_classes = _check_data(x, y)
    rng = np.random.default_rng(seed)
    input_shape = x.shape[1:]
    layers = [Flatten()] if len(input_shape) > 1 else []
    k = int(np.prod(input_shape))
    for n in hidden:
        layers += [Dense(_he(rng, (k, n), k), np.zeros(n)), ReLU()]
        k = n
    layers.append(Dense(_he(rng, (k, n_classes), k) / np.sqrt(2.0), np.zeros(n_classes)))
    model = Sequential(input_shape, layers)
    return fit(model, x, y, epochs=epochs, rng=rng, lr=lr, batch_size=batch_size,
               weight_decay=weight_decay)


def train_cnn(x, y, channels=(8, 8), kernel=3, hidden=(), epochs=60, seed=0, lr=1e-2,
              batch_size=32, weight_decay=1e-3):
    """A small convolutional network on HWC images: per entry of ``channels`` a
    ``kernel`` x ``kernel`` Conv2d + ReLU, then Flatten, Dense+ReLU per ``hidden`` width, and a
    Dense to the classes."""
    x, y, n_classes = _check_data(x, y)
    if x.ndim != 4:
        raise ModelError(f"train_cnn needs HWC images [N, H, W, C], not shape {list(x.shape)}")
    rng = np.random.default_rng(seed)
    layers, cin = [], x.shape[3]
    for cout in channels:
        fan_in = kernel * kernel * cin
        layers += [Conv2d(_he(rng, (kernel, kernel, cin, cout), fan_in), np.zeros(cout)),
                   ReLU()]
        cin = cout
    layers.append(Flatten())
    model = Sequential(x.shape[1:], layers)
    k = model.output_shape[0]
    for n in hidden:
        model.layers += [Dense(_he(rng, (k, n), k), np.zeros(n)), ReLU()]
        k = n
    model.layers.append(Dense(_he(rng, (k, n_classes), k) / np.sqrt(2.0), np.zeros(n_classes)))
    model.shapes()
    return fit(model, x, y, epochs=epochs, rng=rng, lr=lr, batch_size=batch_size,
               weight_decay=weight_decay)


def _check_data(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim < 2 or len(x) == 0:
        raise ModelError(f"training data must be a non-empty batch, not shape {list(x.shape)}")
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ModelError(f"labels must be {len(x)} non-negative integers, not {y.dtype} "
                         f"{list(y.shape)}")
    return x, y.astype(np.int64), int(y.max()) + 1


def _forward(model, x):
    """Outputs and what the backward pass needs of each layer."""
    caches = []
    for layer in model.layers:
        if isinstance(layer, Conv2d):
            kh, kw, _, cout = layer.weight.shape
            cols = im2col(x, kh, kw)
            caches.append((cols, x.shape))
            x = cols @ layer.weight.reshape(-1, cout) + layer.bias
        elif isinstance(layer, (ReLU, ReLU6)):
            mask = (x > 0) if isinstance(layer, ReLU) else (x > 0) & (x < 6)
            caches.append(mask)
            x = layer.forward(x)
        else:   # Dense keeps its input, Flatten its input shape
            caches.append(x if isinstance(layer, Dense) else x.shape)
            x = layer.forward(x)
    return x, caches


def _backward(model, caches, grad):
    """Gradients of every parameter, as a list of (array, gradient) pairs."""
    grads = []
    for i in range(len(model.layers) - 1, -1, -1):
        layer, cache = model.layers[i], caches[i]
        first = i == 0
        if isinstance(layer, Dense):
            grads += [(layer.weight, cache.T @ grad), (layer.bias, grad.sum(axis=0))]
            if not first:
                grad = grad @ layer.weight.T
        elif isinstance(layer, Conv2d):
            cols, input_shape = cache
            kh, kw, cin, cout = layer.weight.shape
            g2 = grad.reshape(-1, cout)
            dw = cols.reshape(-1, kh * kw * cin).T @ g2
            grads += [(layer.weight, dw.reshape(layer.weight.shape)), (layer.bias, g2.sum(0))]
            if not first:
                grad = col2im(grad @ layer.weight.reshape(-1, cout).T, input_shape, kh, kw)
        elif isinstance(layer, (ReLU, ReLU6)):
            grad = grad * cache
        else:
            grad = grad.reshape(cache)
    return grads


def _softmax_xent(logits, y):
    """Mean cross-entropy and its gradient with respect to the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    total = p.sum(axis=1, keepdims=True)
    p /= total
    n = len(y)
    loss = -np.mean(z[np.arange(n), y] - np.log(total[:, 0]))   # log-softmax, no underflow
    p[np.arange(n), y] -= 1.0
    return loss, p / n


def fit(model, x, y, epochs=30, seed=0, lr=3e-3, batch_size=32, weight_decay=1e-4, rng=None,
        beta1=0.9, beta2=0.999, eps=1e-8):
    """Train ``model`` in place (and return it): Adam on softmax cross-entropy with shuffled
    minibatches, a cosine learning-rate decay and L2 weight decay on the weights (not the
    biases). ``rng`` (default: a generator seeded with ``seed``) orders the minibatches."""
    x, y, n_classes = _check_data(x, y)
    x = model.check_input(x)
    if len(model.output_shape) != 1 or model.output_shape[0] < n_classes:
        raise ModelError(f"the model has {model.output_shape} outputs for {n_classes} classes")
    rng = np.random.default_rng(seed) if rng is None else rng
    params = [p for layer in model.layers if isinstance(layer, (Dense, Conv2d))
              for p in (layer.weight, layer.bias)]
    decays = {id(layer.weight) for layer in model.layers if isinstance(layer, (Dense, Conv2d))}
    with _one_blas_thread():
        _adam(model, x, y, params, decays, epochs, rng, lr, batch_size, weight_decay,
              beta1, beta2, eps)
    return model


def _one_blas_thread():
    """The matrices are tiny: BLAS threads only cost, and on a busy machine (another job on
    the other core) they made a 16-channel CNN train 10x slower. One thread also keeps the
    order of the sums (so the weights) independent of the thread count."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:   # scikit-learn's dependency; without it, run as configured
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _adam(model, x, y, params, decays, epochs, rng, lr, batch_size, weight_decay, beta1, beta2,
          eps):
    m = {id(p): np.zeros_like(p) for p in params}
    v = {id(p): np.zeros_like(p) for p in params}
    steps_per_epoch = -(-len(x) // batch_size)
    total, t = epochs * steps_per_epoch, 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            logits, caches = _forward(model, x[idx])
            _, grad = _softmax_xent(logits, y[idx])
            step_lr = lr * 0.5 * (1.0 + np.cos(np.pi * t / total))
            t += 1
            for p, g in _backward(model, caches, grad):
                if id(p) in decays:
                    g = g + weight_decay * p
                m[id(p)] = beta1 * m[id(p)] + (1 - beta1) * g
                v[id(p)] = beta2 * v[id(p)] + (1 - beta2) * g * g
                m_hat = m[id(p)] / (1 - beta1 ** t)
                v_hat = v[id(p)] / (1 - beta2 ** t)
                p -= step_lr * m_hat / (np.sqrt(v_hat) + eps)
