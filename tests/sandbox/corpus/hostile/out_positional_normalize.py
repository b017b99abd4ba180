# expect: policy
# Class 1: F.normalize's positional out writes the normalized tensor into an input.
# line-of: normalize
import torch
import torch.nn.functional as F

def merge(task_vectors):
    F.normalize(task_vectors[1], 2.0, 0, 1e-12, task_vectors[0])
    return task_vectors[0]
