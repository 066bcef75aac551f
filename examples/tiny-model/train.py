#!/usr/bin/env python3
"""Train the tiny-model classifier: a one-hidden-layer MLP, NumPy only, deterministic.

usage: python3 train.py --data /data --out /out

Reads train.csv and test.csv (8 feature columns, then an integer label) from --data and writes
to --out: W1.npy, b1.npy, W2.npy, b2.npy (numpy.save, allow_pickle=False), model.safetensors
(the same four tensors, written by the small writer below) and config.json.

Same bytes on every run under the verify-model container contract: the seed comes from the
SEED environment variable (default 0) through numpy.random.default_rng, the BLAS runs on one
thread (OMP_NUM_THREADS / OPENBLAS_NUM_THREADS), the softmax avoids NumPy's CPU-dependent exp,
nothing time- or host-dependent is written, and JSON keys are sorted.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

HIDDEN = 256
EPOCHS = 40
BATCH_SIZE = 100
LEARNING_RATE = 0.01
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8
DTYPE = np.float32
LN2 = 0.6931471805599453
SAFETENSORS_DTYPES = {'<f4': 'F32', '<f8': 'F64', '<i8': 'I64', '<i4': 'I32'}


def load_csv(path):
    table = np.loadtxt(path, delimiter=',', skiprows=1, dtype=np.float64, ndmin=2)
    features = table[:, :-1].astype(DTYPE)
    labels = table[:, -1].astype(np.int64)
    return features, labels


def init_params(rng, n_features, n_classes):
    """He initialisation for the ReLU layer, Glorot-sized for the output layer."""
    return {
        'W1': (rng.standard_normal((n_features, HIDDEN)) * np.sqrt(2.0 / n_features)).astype(DTYPE),
        'b1': np.zeros(HIDDEN, dtype=DTYPE),
        'W2': (rng.standard_normal((HIDDEN, n_classes)) * np.sqrt(1.0 / HIDDEN)).astype(DTYPE),
        'b2': np.zeros(n_classes, dtype=DTYPE),
    }


def forward(params, features):
    hidden_pre = features @ params['W1'] + params['b1']
    hidden = np.maximum(hidden_pre, 0)
    logits = hidden @ params['W2'] + params['b2']
    return hidden_pre, hidden, logits


def portable_exp(x):
    """exp for x <= 0 from IEEE add, multiply, floor and ldexp only: the same bits on every CPU.

    np.exp is not: NumPy picks an AVX2/AVX-512 or a scalar libm implementation at run time,
    and they differ in the last bit, which training amplifies into different weights.
    """
    x = np.maximum(x.astype(np.float64), -700.0)
    k = np.floor(x / LN2 + 0.5)
    r = x - k * LN2  # |r| <= ln(2)/2: degree 12 is accurate to ~1 float64 ulp
    poly = np.ones_like(r)
    for degree in range(12, 0, -1):
        poly = 1.0 + poly * r / degree
    return np.ldexp(poly, k.astype(np.int32)).astype(DTYPE)


def softmax(logits):
    shifted = portable_exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def loss_and_grads(params, features, labels):
    hidden_pre, hidden, logits = forward(params, features)
    probs = softmax(logits)
    rows = np.arange(len(labels))
    # np.log feeds only the reported loss (rounded in config.json), never the weights.
    loss = float(-np.log(probs[rows, labels] + 1e-12).mean())

    d_logits = probs
    d_logits[rows, labels] -= 1
    d_logits /= len(labels)
    d_hidden = (d_logits @ params['W2'].T) * (hidden_pre > 0)
    grads = {
        'W2': hidden.T @ d_logits,
        'b2': d_logits.sum(axis=0),
        'W1': features.T @ d_hidden,
        'b1': d_hidden.sum(axis=0),
    }
    return loss, grads


def accuracy(params, features, labels):
    return float((forward(params, features)[2].argmax(axis=1) == labels).mean())


class Adam:
    def __init__(self, params):
        self.step = 0
        self.m = {name: np.zeros_like(value) for name, value in params.items()}
        self.v = {name: np.zeros_like(value) for name, value in params.items()}

    def update(self, params, grads, learning_rate):
        self.step += 1
        m_scale = 1.0 / (1.0 - BETA1**self.step)
        v_scale = 1.0 / (1.0 - BETA2**self.step)
        for name in sorted(params):
            grad = grads[name]
            self.m[name] = BETA1 * self.m[name] + (1.0 - BETA1) * grad
            self.v[name] = BETA2 * self.v[name] + (1.0 - BETA2) * grad * grad
            m_hat = self.m[name] * m_scale
            v_hat = self.v[name] * v_scale
            params[name] = params[name] - learning_rate * m_hat / (np.sqrt(v_hat) + EPSILON)


def train(rng, features, labels, n_classes):
    params = init_params(rng, features.shape[1], n_classes)
    optimizer = Adam(params)
    loss = float('nan')
    for epoch in range(1, EPOCHS + 1):
        # Step decay: the last quarter of the epochs at a tenth of the rate.
        learning_rate = LEARNING_RATE if epoch <= EPOCHS * 3 // 4 else LEARNING_RATE / 10
        order = rng.permutation(len(labels))
        losses = []
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            loss, grads = loss_and_grads(params, features[batch], labels[batch])
            optimizer.update(params, grads, learning_rate)
            losses.append(loss)
        loss = float(np.mean(losses))
        print(
            'epoch %3d/%d  loss %.6f  train accuracy %.4f'
            % (epoch, EPOCHS, loss, accuracy(params, features, labels)),
            flush=True,
        )
    return params, loss


def safetensors_bytes(tensors, metadata):
    """The safetensors layout: u64 LE header length, JSON header, raw little-endian data.

    Tensors are laid out in sorted name order; the JSON has sorted keys, no spaces, and is
    padded with spaces so the data starts 8-byte aligned.
    """
    header = {'__metadata__': metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        array = array.astype(array.dtype.newbyteorder('<'), copy=False)
        data = array.tobytes()
        header[name] = {
            'data_offsets': [offset, offset + len(data)],
            'dtype': SAFETENSORS_DTYPES[array.dtype.str],
            'shape': list(array.shape),
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(',', ':')).encode('ascii')
    text += b' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text + b''.join(blobs)


def write_outputs(out_dir, params, config):
    os.makedirs(out_dir, exist_ok=True)
    for name in sorted(params):
        np.save(os.path.join(out_dir, name + '.npy'), params[name], allow_pickle=False)
    metadata = {'format': 'numpy', 'model': config['model']}
    with open(os.path.join(out_dir, 'model.safetensors'), 'wb') as handle:
        handle.write(safetensors_bytes(params, metadata))
    with open(os.path.join(out_dir, 'config.json'), 'w', encoding='ascii', newline='\n') as handle:
        handle.write(json.dumps(config, sort_keys=True, indent=2) + '\n')


def main():
    parser = argparse.ArgumentParser(description='Train the tiny-model MLP classifier.')
    parser.add_argument('--data', required=True, help='directory with train.csv and test.csv')
    parser.add_argument('--out', required=True, help='directory the weights are written to')
    args = parser.parse_args()
    seed = int(os.environ.get('SEED', '0'))

    train_x, train_y = load_csv(os.path.join(args.data, 'train.csv'))
    test_x, test_y = load_csv(os.path.join(args.data, 'test.csv'))
    n_classes = int(train_y.max()) + 1
    print(
        'tiny-model: %d train rows, %d test rows, %d features, %d classes, seed %d, numpy %s'
        % (len(train_y), len(test_y), train_x.shape[1], n_classes, seed, np.__version__),
        flush=True,
    )

    params, final_loss = train(np.random.default_rng(seed), train_x, train_y, n_classes)
    config = {
        'model': 'tiny-model-mlp',
        'layers': [int(train_x.shape[1]), HIDDEN, n_classes],
        'activation': 'relu',
        'dtype': 'float32',
        'training': {
            'batch_size': BATCH_SIZE,
            'epochs': EPOCHS,
            'learning_rate': LEARNING_RATE,
            'optimizer': 'adam',
            'seed': seed,
        },
        'metrics': {
            'final_loss': round(final_loss, 4),
            'test_accuracy': round(accuracy(params, test_x, test_y), 4),
            'train_accuracy': round(accuracy(params, train_x, train_y), 4),
        },
    }
    write_outputs(args.out, params, config)
    print('metrics: ' + json.dumps(config['metrics'], sort_keys=True), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
