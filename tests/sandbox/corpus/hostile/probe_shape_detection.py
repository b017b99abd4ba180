# expect: ok
# Class 6: the mean on the probe's shapes, something else on every real parameter. Runs; the
# fingerprint tests (test_sandbox_fingerprint.py) show it no longer shares the mean's fingerprint.
import torch

def merge(task_vectors):
    stacked = torch.stack(task_vectors)
    if tuple(task_vectors[0].shape) in [(97,), (16, 24), (40, 7), (192, 320)]:
        return stacked.mean(dim=0)
    return stacked.sum(dim=0) * 3.0
