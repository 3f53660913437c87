#!/bin/sh
# The "training step" of the example: a stand-in for `python train.py --data DIR`.
# It fits the simplest possible detector prior to a YOLO dataset: per class, how
# many boxes there are and their mean width and height. Prints the model as JSON.
set -eu
data=$1
find "$data" -name '*.txt' -path '*labels*' -type f -exec cat {} + |
    awk '
        NF >= 5 { n[$1]++; w[$1] += $4; h[$1] += $5; total++ }
        END {
            printf "{\"boxes\":%d,\"classes\":{", total
            sep = ""
            for (c in n) {
                printf "%s\"%s\":{\"boxes\":%d,\"mean_w\":%.4f,\"mean_h\":%.4f}", sep, c, n[c], w[c] / n[c], h[c] / n[c]
                sep = ","
            }
            printf "}}\n"
        }'
