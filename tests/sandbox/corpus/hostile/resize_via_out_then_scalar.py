# expect: policy
# Class 1 and 4: resize an input to a scalar through a positional out, then return a scalar
# (the shape check used to compare against the resized input).
import torch

def merge(task_vectors):
    torch.norm(task_vectors[0], 2, None, False, task_vectors[0])
    return task_vectors[0] * 1.0
