#!/usr/bin/env python3
"""Train the torch-cnn classifier: a small CNN in PyTorch, deterministic, resumable in segments.

usage: python3 train.py --data /data --out /out [--prev /prev]

Reads train.bin and test.bin (make_dataset.py) from --data and writes to --out:
  model.safetensors      the weights (sorted names, float32), written by the small writer below
  config.json            architecture, hyperparameters and metrics
  optimizer.safetensors  Adam's moments and step counts
  rng.safetensors        the torch CPU generator (dropout), the shuffling generator, the epoch's order
  progress.json          steps done, the data position
Nothing is pickled: torch.save is never called and every file is plain JSON or safetensors.

Segments (verify-model PROTOCOL.md section 9): with VERIFY_MODEL_SEGMENTS=N and
VERIFY_MODEL_SEGMENT=i, run i trains steps [(i-1)*S/N, i*S/N) of the S steps, resuming from the
complete state run i-1 left in --prev (default /prev). The last run's model.safetensors and
config.json equal a one-run training's bit for bit.

EPOCHS (default 4) sets the training's length: a ledger sets it in build.env.

Same bytes on every run under the verify-model container contract: seeds from SEED (default 0),
one thread, torch.use_deterministic_algorithms(True), nothing time- or host-dependent written,
JSON keys sorted. Which CPU kernels PyTorch, oneDNN and the BLAS pick is the ledger's build.isa.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 12
CLASSES = 4
BATCH_SIZE = 32
LEARNING_RATE = 0.005
DROPOUT = 0.1
FORMAT = 1
SAFETENSORS_DTYPES = {'<f4': 'F32', '<f8': 'F64', '<i8': 'I64', '|u1': 'U8'}
NUMPY_DTYPES = {tag: np.dtype(name) for name, tag in SAFETENSORS_DTYPES.items()}


class Net(torch.nn.Module):
    """conv 3x3 (8) → pool → conv 3x3 (16) → pool → linear 32 → dropout → linear 4."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = torch.nn.Linear(16 * (SIZE // 4) ** 2, 32)
        self.fc2 = torch.nn.Linear(32, CLASSES)
        self.dropout = torch.nn.Dropout(DROPOUT)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(F.relu(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


def load_records(path):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 1 + SIZE * SIZE)
    labels = torch.from_numpy(raw[:, 0].astype(np.int64))
    pixels = raw[:, 1:].astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(pixels.reshape(-1, 1, SIZE, SIZE)), labels


# --- safetensors without pickle ------------------------------------------------------------


def safetensors_bytes(tensors, metadata):
    """u64 LE header length, JSON header (sorted keys, no spaces, space-padded to 8 bytes), data."""
    header = {'__metadata__': metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name].detach().cpu().numpy())
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


def read_safetensors(path):
    with open(path, 'rb') as handle:
        content = handle.read()
    (length,) = struct.unpack('<Q', content[:8])
    header = json.loads(content[8 : 8 + length])
    header.pop('__metadata__', None)
    data = content[8 + length :]
    tensors = {}
    for name, entry in header.items():
        start, end = entry['data_offsets']
        array = np.frombuffer(data[start:end], dtype=NUMPY_DTYPES[entry['dtype']])
        tensors[name] = torch.from_numpy(array.reshape(entry['shape']).copy())
    return tensors


def write_file(out_dir, name, content):
    with open(os.path.join(out_dir, name), 'wb') as handle:
        handle.write(content)


def json_bytes(value):
    return (json.dumps(value, sort_keys=True, indent=2) + '\n').encode('ascii')


# --- training state ------------------------------------------------------------------------


class State:
    """Everything a segment needs to continue exactly where the previous one stopped."""

    def __init__(self, seed, steps_per_epoch):
        torch.manual_seed(seed)
        self.model = Net()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE, foreach=False)
        self.shuffle = torch.Generator().manual_seed(seed + 1)
        self.order = torch.zeros(0, dtype=torch.int64)
        self.step = 0
        self.seed = seed
        self.steps_per_epoch = steps_per_epoch

    def progress(self, total_steps):
        return {
            'epoch': self.step // self.steps_per_epoch,
            'format': FORMAT,
            'position': (self.step % self.steps_per_epoch) * BATCH_SIZE,
            'seed': self.seed,
            'step': self.step,
            'total_steps': total_steps,
        }

    def write(self, out_dir, total_steps, config):
        os.makedirs(out_dir, exist_ok=True)
        weights = dict(self.model.state_dict())
        write_file(out_dir, 'model.safetensors', safetensors_bytes(weights, {'format': 'pt', 'model': 'torch-cnn'}))
        write_file(out_dir, 'config.json', json_bytes(config))
        moments = {}
        for name, param in self.model.named_parameters():
            for key, value in self.optimizer.state.get(param, {}).items():
                moments['%s.%s' % (key, name)] = torch.as_tensor(value)
        write_file(out_dir, 'optimizer.safetensors', safetensors_bytes(moments, {'optimizer': 'adam'}))
        rng = {'torch_cpu': torch.get_rng_state(), 'shuffle': self.shuffle.get_state(), 'epoch_order': self.order}
        write_file(out_dir, 'rng.safetensors', safetensors_bytes(rng, {}))
        write_file(out_dir, 'progress.json', json_bytes(self.progress(total_steps)))

    def resume(self, prev_dir, expected_step, total_steps):
        with open(os.path.join(prev_dir, 'progress.json'), encoding='ascii') as handle:
            progress = json.load(handle)
        self.step = expected_step
        expected = self.progress(total_steps)
        if progress != expected:
            raise SystemExit('torch-cnn: %s/progress.json is %s, expected %s' % (prev_dir, progress, expected))
        self.model.load_state_dict(read_safetensors(os.path.join(prev_dir, 'model.safetensors')))
        moments = read_safetensors(os.path.join(prev_dir, 'optimizer.safetensors'))
        for name, param in self.model.named_parameters():
            self.optimizer.state[param] = {
                key: moments['%s.%s' % (key, name)] for key in ('step', 'exp_avg', 'exp_avg_sq')
            }
        rng = read_safetensors(os.path.join(prev_dir, 'rng.safetensors'))
        torch.set_rng_state(rng['torch_cpu'])
        self.shuffle.set_state(rng['shuffle'])
        self.order = rng['epoch_order']


def learning_rate(step, total_steps):
    """Step decay: the last quarter of the steps at a tenth of the rate (a function of the step)."""
    return LEARNING_RATE if step < total_steps * 3 // 4 else LEARNING_RATE / 10


def train_steps(state, images, labels, end, total_steps):
    state.model.train()
    losses = []
    while state.step < end:
        if state.step % state.steps_per_epoch == 0:
            state.order = torch.randperm(len(labels), generator=state.shuffle)
        position = (state.step % state.steps_per_epoch) * BATCH_SIZE
        batch = state.order[position : position + BATCH_SIZE]
        for group in state.optimizer.param_groups:
            group['lr'] = learning_rate(state.step, total_steps)
        state.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(state.model(images[batch]), labels[batch])
        loss.backward()
        state.optimizer.step()
        losses.append(loss.item())
        state.step += 1
        if state.step % state.steps_per_epoch == 0:
            print(
                'epoch %d  step %d/%d  mean batch loss %.6f'
                % (state.step // state.steps_per_epoch, state.step, total_steps, sum(losses) / len(losses)),
                flush=True,
            )
            losses = []


def evaluate(model, images, labels):
    model.eval()
    with torch.no_grad():
        logits = model(images)
        loss = F.cross_entropy(logits, labels).item()
        accuracy = (logits.argmax(dim=1) == labels).double().mean().item()
    return loss, accuracy


def segment_of(environ):
    """(i, N) from VERIFY_MODEL_SEGMENT / VERIFY_MODEL_SEGMENTS; (1, 1) for a one-run training."""
    if 'VERIFY_MODEL_SEGMENTS' not in environ and 'VERIFY_MODEL_SEGMENT' not in environ:
        return 1, 1
    try:
        index, count = int(environ['VERIFY_MODEL_SEGMENT']), int(environ['VERIFY_MODEL_SEGMENTS'])
    except (KeyError, ValueError):
        raise SystemExit('torch-cnn: VERIFY_MODEL_SEGMENT and VERIFY_MODEL_SEGMENTS must both be integers')
    if not 1 <= index <= count:
        raise SystemExit('torch-cnn: VERIFY_MODEL_SEGMENT=%d is not in 1..%d' % (index, count))
    return index, count


def main():
    parser = argparse.ArgumentParser(description='Train the torch-cnn classifier.')
    parser.add_argument('--data', required=True, help='directory with train.bin and test.bin')
    parser.add_argument('--out', required=True, help='directory the weights and state are written to')
    parser.add_argument('--prev', default='/prev', help="the previous segment's state (segments 2..N)")
    args = parser.parse_args()
    seed = int(os.environ.get('SEED', '0'))
    epochs = int(os.environ.get('EPOCHS', '4'))
    index, count = segment_of(os.environ)

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)

    train_x, train_y = load_records(os.path.join(args.data, 'train.bin'))
    test_x, test_y = load_records(os.path.join(args.data, 'test.bin'))
    steps_per_epoch = len(train_y) // BATCH_SIZE
    total_steps = epochs * steps_per_epoch
    if count > total_steps:
        raise SystemExit('torch-cnn: %d segments for %d steps: at most one segment per step' % (count, total_steps))
    start, end = (index - 1) * total_steps // count, index * total_steps // count
    print(
        'torch-cnn: %d train images, %d test images, seed %d, torch %s, numpy %s, cpu capability %s; '
        'segment %d/%d: steps %d..%d of %d'
        % (
            len(train_y),
            len(test_y),
            seed,
            torch.__version__,
            np.__version__,
            torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, 'cpu') else 'n/a',
            index,
            count,
            start,
            end,
            total_steps,
        ),
        flush=True,
    )

    state = State(seed, steps_per_epoch)
    if index > 1:
        state.resume(args.prev, start, total_steps)
    train_steps(state, train_x, train_y, end, total_steps)

    train_loss, train_accuracy = evaluate(state.model, train_x, train_y)
    test_loss, test_accuracy = evaluate(state.model, test_x, test_y)
    config = {
        'model': 'torch-cnn',
        'architecture': 'conv3x3(1->8) relu maxpool2 conv3x3(8->16) relu maxpool2 linear(144->32) relu dropout linear(32->4)',
        'input': [1, SIZE, SIZE],
        'classes': CLASSES,
        'dtype': 'float32',
        'parameters': sum(p.numel() for p in state.model.parameters()),
        'training': {
            'batch_size': BATCH_SIZE,
            'dropout': DROPOUT,
            'epochs': epochs,
            'learning_rate': LEARNING_RATE,
            'optimizer': 'adam',
            'seed': seed,
            'steps_done': state.step,
            'steps': total_steps,
        },
        'metrics': {
            'test_accuracy': round(test_accuracy, 4),
            'test_loss': round(test_loss, 4),
            'train_accuracy': round(train_accuracy, 4),
            'train_loss': round(train_loss, 4),
        },
    }
    state.write(args.out, total_steps, config)
    print('metrics: ' + json.dumps(config['metrics'], sort_keys=True), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
