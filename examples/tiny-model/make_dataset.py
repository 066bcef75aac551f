#!/usr/bin/env python3
"""Write the tiny-model data set (train.csv, test.csv) into a directory.

Three interleaved spiral arms in a plane, embedded linearly into 8 features with a little
noise on every feature. Byte-identical output on every run and every Python 3: it uses only
`random.random()` (the one generator method Python guarantees to keep reproducible for a
given seed) and fixed '%.6f' formatting. Standard library only, so it runs on any host.

usage: python3 make_dataset.py <output-dir> [--seed N]
"""

import argparse
import math
import os
import random

CLASSES = 3
FEATURES = 8
POINTS_PER_CLASS = 1700
TEST_ROWS = 1100


def normal(rng):
    """Box-Muller on random.random() (random.gauss's algorithm is not a stability promise)."""
    u1 = 1.0 - rng.random()  # (0, 1]: log is finite
    u2 = rng.random()
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def shuffle(rng, rows):
    """Fisher-Yates driven by random.random() only."""
    for i in range(len(rows) - 1, 0, -1):
        j = int(rng.random() * (i + 1))
        rows[i], rows[j] = rows[j], rows[i]


def spiral_rows(rng):
    embedding = [[rng.random() * 2.0 - 1.0 for _ in range(FEATURES)] for _ in range(2)]
    rows = []
    for label in range(CLASSES):
        for i in range(POINTS_PER_CLASS):
            radius = i / (POINTS_PER_CLASS - 1)
            angle = label * 2.0 * math.pi / CLASSES + radius * 8.0 + normal(rng) * 0.2
            x, y = radius * math.sin(angle), radius * math.cos(angle)
            features = [
                x * embedding[0][f] + y * embedding[1][f] + normal(rng) * 0.02
                for f in range(FEATURES)
            ]
            rows.append((features, label))
    shuffle(rng, rows)
    return rows


def write_csv(path, rows):
    header = ','.join(['x%d' % f for f in range(FEATURES)] + ['label'])
    lines = [header]
    for features, label in rows:
        lines.append(','.join(['%.6f' % v for v in features] + ['%d' % label]))
    with open(path, 'w', encoding='ascii', newline='\n') as handle:
        handle.write('\n'.join(lines) + '\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('output_dir')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    rows = spiral_rows(random.Random(args.seed))
    os.makedirs(args.output_dir, exist_ok=True)
    write_csv(os.path.join(args.output_dir, 'train.csv'), rows[TEST_ROWS:])
    write_csv(os.path.join(args.output_dir, 'test.csv'), rows[:TEST_ROWS])


if __name__ == '__main__':
    main()
