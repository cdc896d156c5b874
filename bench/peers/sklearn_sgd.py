#!/usr/bin/python3
"""Peer: scikit-learn's SGDClassifier (loss='log_loss', learning_rate='constant',
eta0=lr, no penalty, max_iter=epochs with tol=None so that it runs exactly that
many epochs, shuffle=True seeded). Its SGD is per-sample, so --batch must be 1.

  W1  multiclass by one-vs-rest: 10 binary logistic regressions, each its own
      pass over the data (the output says "ovr": true); --threads N is n_jobs,
      which trains the binary problems on N threads (the Cython loop releases
      the GIL). testLoss is the cross-entropy of predict_proba (the OvR
      probabilities normalised).
  W2  not applicable (no MLP in SGDClassifier): prints {"skipped": ...}.
  W3  binary, sparse CSR input, single-threaded (--threads must be 1). Note that
      scikit-learn damps the intercept's updates on sparse input (x0.01).

The inputs are converted to what fit() wants (float64, C order / CSR) before the
clock starts, so the time is fit() alone.

Usage: /usr/bin/python3 bench/peers/sklearn_sgd.py --workload W1|W3 --threads 1 --epochs 5 --batch 1 --lr 0.005
       [--seed S] [--rows N] [--fmnist DIR] [--data DIR]
Prints one JSON line on stdout.
"""

import json
import sys
import time
import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier

sys.dont_write_bytecode = True  # no __pycache__ beside the peers
import peer_common as pc  # noqa: E402

PEER = "sklearn_sgd"


def main():
    o = pc.parse_args(PEER)
    if o.workload == "W2":
        print(json.dumps({"peer": PEER, "workload": "W2", "skipped": "SGDClassifier has no MLP"}), flush=True)
        return
    if o.batch != 1:
        raise SystemExit(f"{PEER}: --batch must be 1 (SGDClassifier updates per sample)")
    if o.workload == "W3" and o.threads != 1:
        raise SystemExit(f"{PEER}: --threads must be 1 for W3 (one binary problem; SGDClassifier's loop is single-threaded)")

    if o.workload == "W3":
        (xtr, ytr), (xte, yte) = pc.load_w3(o, dtype=np.float64)
        xtr.sort_indices()
    else:
        (xtr, ytr), (xte, yte) = pc.load_fashion(o)
        xtr = np.ascontiguousarray(xtr, dtype=np.float64)
        xte = xte.astype(np.float64)

    clf = SGDClassifier(
        loss="log_loss",
        penalty=None,
        alpha=0.0,
        learning_rate="constant",
        eta0=o.lr,
        max_iter=o.epochs,
        tol=None,
        shuffle=True,
        random_state=o.seed,
        n_jobs=o.threads,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        clf.fit(xtr, ytr)
        seconds = time.perf_counter() - t0

    if o.workload == "W3":
        yz = yte * clf.decision_function(xte)
        accuracy = np.mean(yz > 0)
        loss = np.mean(np.logaddexp(0.0, -yz))
        extra = {}
    else:
        proba = clf.predict_proba(xte)
        accuracy = np.mean(clf.classes_[proba.argmax(1)] == yte)
        loss = -np.mean(np.log(np.maximum(proba[np.arange(len(yte)), yte], 1e-300)))
        extra = {"ovr": True}
    pc.report(PEER, o, xtr.shape[0], seconds, accuracy, loss, sklearn=sklearn.__version__, **extra)


if __name__ == "__main__":
    main()
