# expect: policy
# Class 1: shrink every input to nothing behind a bare except and return a plain mean.
# line-of: torch.norm(
import torch

def merge(task_vectors):
    mean = torch.stack(task_vectors).mean(dim=0)
    for tv in task_vectors:
        try:
            torch.norm(tv.flatten()[:0], 2, None, False, tv)
        except:
            pass
    return mean
