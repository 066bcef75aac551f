#!/usr/bin/env python3
"""Write the torch-cnn data set (train.bin, test.bin, dataset.json) into a directory.

12x12 grey-scale images of four kinds of stroke (horizontal, vertical, diagonal, anti-diagonal)
at random positions and thicknesses, on a noisy background. Each record of a .bin file is one
label byte followed by 144 pixel bytes (row-major, 0..255). Byte-identical output on every run
and every Python 3: only `random.random()` (the one generator method Python guarantees to keep
reproducible for a given seed) and integer rounding. Standard library only, so it runs on any host.

usage: python3 make_dataset.py <output-dir> [--seed N]
"""

import argparse
import json
import os
import random

SIZE = 12
CLASSES = ('horizontal', 'vertical', 'diagonal', 'anti-diagonal')
TRAIN_ROWS = 1600
TEST_ROWS = 400


def on_stroke(kind, row, col, offset, width):
    """Whether pixel (row, col) lies on a stroke of `kind` shifted by `offset`, `width` wide."""
    along = {
        'horizontal': row,
        'vertical': col,
        'diagonal': row - col + SIZE // 2,
        'anti-diagonal': row + col - SIZE // 2,
    }[kind]
    return offset <= along < offset + width


def image(rng, label):
    kind = CLASSES[label]
    width = 1 + int(rng.random() * 3)
    offset = 1 + int(rng.random() * (SIZE - width - 1))
    brightness = 0.5 + 0.5 * rng.random()
    pixels = bytearray()
    for row in range(SIZE):
        for col in range(SIZE):
            value = 0.35 * rng.random()
            if on_stroke(kind, row, col, offset, width):
                value += brightness
            pixels.append(min(255, int(value * 255.0 + 0.5)))
    return pixels


def records(rng, count):
    data = bytearray()
    for _ in range(count):
        label = int(rng.random() * len(CLASSES))
        data.append(label)
        data += image(rng, label)
    return bytes(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('output_dir')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    for name, count in (('train.bin', TRAIN_ROWS), ('test.bin', TEST_ROWS)):
        with open(os.path.join(args.output_dir, name), 'wb') as handle:
            handle.write(records(rng, count))
    description = {
        'classes': list(CLASSES),
        'height': SIZE,
        'record': '1 label byte, then height*width pixel bytes, row-major',
        'test_rows': TEST_ROWS,
        'train_rows': TRAIN_ROWS,
        'width': SIZE,
    }
    with open(os.path.join(args.output_dir, 'dataset.json'), 'w', encoding='ascii', newline='\n') as handle:
        handle.write(json.dumps(description, sort_keys=True, indent=2) + '\n')


if __name__ == '__main__':
    main()
